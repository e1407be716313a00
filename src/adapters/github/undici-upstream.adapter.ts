/**
 * UpstreamPort over undici: two keep-alive pools bound to the upstream origin (nothing else is
 * reachable through them), one for reads (the cached GETs of fetch()) and one for everything else
 * (forward()), so writes — however slow their clients or GitHub's answers — never hold a connection
 * a read needs. Every call carries a deadline that also covers the wait for a free connection. A cached
 * GET goes through bufferedDispatch (a timer and gathered chunks, no AbortSignal, no body stream).
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../domain/ports/upstream.port.js';
import type { HeaderMap } from '../../domain/model.js';
import { ErrorCode, MirrorError } from '../../domain/errors.js';
import { bufferedDispatch, type BufferedAnswer, type BufferedCall } from './buffered-dispatch.js';

export interface UndiciUpstreamOptions {
  /** Base URL of GitHub's API, e.g. https://api.github.com or https://ghe.example/api/v3. */
  url: string;
  /**
   * Whole-call deadline for cached GETs and time to the answer's head for pass-through; both include
   * the time spent waiting for a free connection.
   */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Connections of the read pool (fetch: cached GETs and HEADs). */
  connections: number;
  /** Connections of the write pool (forward: every other method); default a quarter of `connections`. */
  writeConnections?: number;
  /** Largest decoded body read into memory for a cached GET, the same with and without gzip. */
  maxBodyBytes: number;
}

export class UndiciUpstream implements UpstreamPort {
  private readonly reads: Pool;
  private readonly writes: Pool;
  private readonly basePath: string;
  private readonly host: string;
  /** What every cached GET's call shares: its deadline and body limits (bufferedDispatch). */
  private readonly bufferedCall: BufferedCall;

  constructor(private readonly options: UndiciUpstreamOptions) {
    const base = new URL(options.url);
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.host = base.host;
    const pool = (connections: number, timeoutMs: number) =>
      new Pool(base.origin, {
        connections,
        connect: { timeout: options.connectTimeoutMs },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        keepAliveTimeout: 30_000,
        pipelining: 1,
      });
    // Reads: no undici head and body timers (0) — bufferedDispatch's deadline covers the whole call and
    // always fires first; undici's timers would only cost two timer objects per call, kept ~1 s each.
    this.reads = pool(options.connections, 0);
    const maxBodyBytes = options.maxBodyBytes;
    this.bufferedCall = {
      timeoutMs: options.timeoutMs,
      timeoutError: () =>
        new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'GitHub did not answer in time', { cause: new Error(`no whole answer within upstream.timeoutMs (${options.timeoutMs} ms)`) }),
      maxBytes: (headers) => (encodingOf(headers) === undefined ? maxBodyBytes : encodedLimit(maxBodyBytes)),
      tooLarge: (limit) => new MirrorError(ErrorCode.UPSTREAM_BODY_TOO_LARGE, `upstream body larger than ${limit} bytes`),
    };
    this.writes = pool(options.writeConnections ?? Math.max(1, Math.floor(options.connections / 4)), options.timeoutMs);
  }

  async fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    const headers = withHeaders(request.headers, this.host, 'gzip');
    let answer: BufferedAnswer;
    try {
      answer = await bufferedDispatch(this.reads, { path: this.basePath + request.target, method: request.method, headers: headers as Record<string, string | string[]> }, this.bufferedCall);
    } catch (error) {
      throw mapError(error);
    }
    try {
      const body = decode(answer.body, encodingOf(answer.headers), this.options.maxBodyBytes);
      // undici's parsed headers are this call's own: the two that describe the bytes on the wire go,
      // no copy (a 25-header set copied key by key is a ~3 KB dictionary)
      const headers = answer.headers as HeaderMap;
      delete headers['content-encoding'];
      delete headers['content-length'];
      return { status: answer.statusCode, headers, body };
    } catch (error) {
      throw mapError(error);
    }
  }

  async forward(request: UpstreamRequest): Promise<StreamedResponse> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'upstream timeout')), this.options.timeoutMs);
    timer.unref();
    const headers = withHeaders(request.headers, this.host, undefined);
    const body = request.body === undefined || request.body instanceof Uint8Array ? request.body : restartingDeadline(request.body, timer);
    try {
      const response = await untilAborted(
        this.writes.request({
          path: this.basePath + request.target,
          method: request.method,
          headers: headers as Record<string, string | string[]>,
          body: body as Dispatcher.DispatchOptions['body'],
          signal: controller.signal,
        }),
        controller.signal,
      );
      // The deadline covers the answer's head; the body streams under undici's bodyTimeout.
      clearTimeout(timer);
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      clearTimeout(timer);
      throw mapError(error, controller.signal);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.reads.close(), this.writes.close()]);
  }

  /** Abort everything in flight (shutdown after the grace period). */
  async destroy(): Promise<void> {
    await Promise.all([this.reads.destroy(), this.writes.destroy()]);
  }
}

/**
 * The request's headers with Host (and Accept-Encoding) set, copied key by key: `{ ...headers, host }`
 * makes V8 build a new hidden class for every call.
 */
function withHeaders(headers: HeaderMap, host: string, acceptEncoding: string | undefined): HeaderMap {
  const out: HeaderMap = {};
  for (const name in headers) out[name] = headers[name];
  out['host'] = host;
  if (acceptEncoding !== undefined) out['accept-encoding'] = acceptEncoding;
  return out;
}

/**
 * Restarts the deadline on every chunk of a streamed request body and once it is all sent: the
 * deadline measures GitHub's silence, not a slow client (server.requestTimeoutMs bounds the client).
 */
async function* restartingDeadline(source: AsyncIterable<Uint8Array>, timer: NodeJS.Timeout): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    timer.refresh();
    yield chunk;
  }
  timer.refresh();
}

/**
 * Settles with the request, or rejects as soon as the signal aborts. undici only notices an abort
 * once a queued request has a connection: with every connection busy, the deadline would otherwise
 * wait for one. The abandoned request is aborted by undici when it is dispatched (the signal is
 * already aborted); should it answer anyway, its body is dropped.
 */
function untilAborted(request: Promise<Dispatcher.ResponseData>, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  if (signal.aborted) {
    request.then((late) => late.body.destroy(), () => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise((resolve, reject) => {
    let gaveUp = false;
    const onAbort = () => {
      gaveUp = true;
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        if (gaveUp) response.body.destroy();
        else resolve(response);
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The most encoded bytes read for a compressed body: a body whose decoded size is within the limit
 * can be slightly larger compressed (incompressible data), so the decoded size decides, not this.
 */
function encodedLimit(maxBytes: number): number {
  return maxBytes + Math.ceil(maxBytes / 100) + 1024;
}

/** Decodes a compressed body; a decoded size over `maxBytes` is UPSTREAM_BODY_TOO_LARGE, as for an identity body. */
function decode(raw: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  if (encoding === undefined || raw.byteLength === 0) return raw;
  const options = { maxOutputLength: maxBytes };
  try {
    switch (encoding) {
      case 'gzip':
      case 'x-gzip':
        return gunzipSync(raw, options);
      case 'deflate':
        return inflateSync(raw, options);
      case 'br':
        return brotliDecompressSync(raw, options);
      default:
        throw new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, `unsupported upstream content-encoding ${encoding}`);
    }
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') {
      throw new MirrorError(ErrorCode.UPSTREAM_BODY_TOO_LARGE, `upstream body larger than ${maxBytes} bytes once decoded`, { cause: error });
    }
    throw error;
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** The content-coding of an answer, lower-case; undefined for none or identity. */
function encodingOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['content-encoding'];
  if (typeof header !== 'string') return undefined;
  const encoding = header.trim().toLowerCase();
  return encoding === 'identity' ? undefined : encoding;
}

/** `signal`: the deadline of a call that has one (forward); a cached GET's deadline rejects with its own MirrorError. */
function mapError(error: unknown, signal?: AbortSignal): MirrorError {
  if (error instanceof MirrorError) return error;
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason;
    if (reason instanceof MirrorError) return reason;
    return new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'GitHub did not answer in time', { cause: error });
  }
  const code = (error as { code?: string } | null)?.code;
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'GitHub did not answer in time', { cause: error });
  }
  if (error instanceof undiciErrors.RequestContentLengthMismatchError) {
    return new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'request body length mismatch', { cause: error });
  }
  return new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'Could not reach GitHub', { cause: error });
}
