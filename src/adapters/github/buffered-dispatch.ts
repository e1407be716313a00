/**
 * One buffered call through undici's dispatch API: what a cached GET needs and nothing more. No
 * AbortSignal (AbortSignal.timeout keeps a timer and a weakly held signal alive for the whole timeout
 * of every call — old-generation garbage at hundreds of calls a second — and each abort listener
 * costs an EventTarget registration), no body stream, no async iterator: a plain timer is the
 * deadline of the whole call, the wait for a free connection included; the answer's chunks are
 * gathered up to a limit its head decides; the headers are those undici's request() would give
 * (undici parses them the same way for both).
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';

export interface BufferedAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The whole body: the one chunk as received, or the chunks joined. */
  body: Buffer;
}

export interface BufferedCall {
  /** Deadline of the whole call, from now: the wait for a connection, the head and the body. */
  timeoutMs: number;
  /** The error a call past its deadline rejects with. */
  timeoutError(): Error;
  /** Most body bytes read, given the answer's headers. */
  maxBytes(headers: IncomingHttpHeaders): number;
  /** The error a larger body rejects with (the call is aborted). */
  tooLarge(maxBytes: number): Error;
}

/**
 * Sends the request and resolves with the whole answer; rejects with undici's error, or with
 * `timeoutError()` / `tooLarge()` — after which the request is aborted (a queued one as soon as it
 * gets a connection, before anything is sent) and whatever still arrives is dropped.
 */
export function bufferedDispatch(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, call: BufferedCall): Promise<BufferedAnswer> {
  return new Promise<BufferedAnswer>((resolve, reject) => {
    dispatcher.dispatch(options, new BufferedHandler(resolve, reject, call));
  });
}

class BufferedHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private failure: Error | undefined;
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  private statusCode = 0;
  private headers: IncomingHttpHeaders = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private limit = Infinity;

  constructor(
    private readonly resolve: (answer: BufferedAnswer) => void,
    private readonly reject: (error: Error) => void,
    private readonly call: BufferedCall,
  ) {
    this.timer = setTimeout(() => this.fail(call.timeoutError()), call.timeoutMs);
    this.timer.unref();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // given up while it waited for a connection: it never leaves
    if (this.failure !== undefined) controller.abort(this.failure);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200 || this.settled) return; // 1xx: informational, the answer follows
    this.statusCode = statusCode;
    this.headers = headers;
    this.limit = this.call.maxBytes(headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.byteLength;
    if (this.size > this.limit) {
      this.fail(this.call.tooLarge(this.limit));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(error);
  }

  /** Settles with `error` and stops the request wherever it is. */
  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.failure = error;
    clearTimeout(this.timer);
    this.reject(error);
    this.controller?.abort(error);
  }
}
