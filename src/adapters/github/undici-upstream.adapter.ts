import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../domain/ports/upstream.port.js';
import type { HeaderMap } from '../../domain/model.js';
import { ErrorCode, MirrorError } from '../../domain/errors.js';

export interface UndiciUpstreamOptions {
  /** Base URL of GitHub's API, e.g. https://api.github.com or https://ghe.example/api/v3. */
  url: string;
  /** Whole-call deadline for cached GETs and time to first byte for pass-through. */
  timeoutMs: number;
  connectTimeoutMs: number;
  connections: number;
  /** Largest decoded body read into memory for a cached GET. */
  maxBodyBytes: number;
}

/**
 * UpstreamPort over one undici keep-alive Pool bound to the upstream origin: nothing else is reachable
 * through it. Every call carries an AbortSignal, so a timed-out call really stops.
 */
export class UndiciUpstream implements UpstreamPort {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly host: string;

  constructor(private readonly options: UndiciUpstreamOptions) {
    const base = new URL(options.url);
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.host = base.host;
    this.pool = new Pool(base.origin, {
      connections: options.connections,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
    });
  }

  async fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const headers = { ...request.headers, host: this.host, 'accept-encoding': 'gzip' };
    let response: Dispatcher.ResponseData;
    try {
      response = await this.pool.request({
        path: this.basePath + request.target,
        method: request.method,
        headers: headers as Record<string, string | string[]>,
        signal,
      });
    } catch (error) {
      throw mapError(error, signal);
    }
    try {
      const raw = await readBody(response.body, this.options.maxBodyBytes);
      const encoding = response.headers['content-encoding'];
      const body = decode(raw, typeof encoding === 'string' ? encoding : undefined, this.options.maxBodyBytes);
      const out: HeaderMap = { ...response.headers };
      delete out['content-encoding'];
      delete out['content-length'];
      return { status: response.statusCode, headers: out, body };
    } catch (error) {
      response.body.destroy();
      throw mapError(error, signal);
    }
  }

  async forward(request: UpstreamRequest): Promise<StreamedResponse> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'upstream timeout')), this.options.timeoutMs);
    timer.unref();
    const headers = { ...request.headers, host: this.host };
    const body = request.body === undefined || request.body instanceof Uint8Array ? request.body : restartingDeadline(request.body, timer);
    try {
      const response = await this.pool.request({
        path: this.basePath + request.target,
        method: request.method,
        headers: headers as Record<string, string | string[]>,
        body: body as Dispatcher.DispatchOptions['body'],
        signal: controller.signal,
      });
      // The deadline covers the answer's head; the body streams under undici's bodyTimeout.
      clearTimeout(timer);
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      clearTimeout(timer);
      throw mapError(error, controller.signal);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Abort everything in flight (shutdown after the grace period). */
  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
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

async function readBody(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    total += buffer.byteLength;
    if (total > maxBytes) {
      throw new MirrorError(ErrorCode.UPSTREAM_BODY_TOO_LARGE, `upstream body larger than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}

function decode(raw: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  if (encoding === undefined || encoding === 'identity' || raw.byteLength === 0) return raw;
  const options = { maxOutputLength: maxBytes };
  switch (encoding.trim().toLowerCase()) {
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
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

function mapError(error: unknown, signal: AbortSignal): MirrorError {
  if (error instanceof MirrorError) return error;
  if (signal.aborted) {
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
