import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyBaseLogger } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { ResolveRequest } from '../../domain/use-cases/resolve-resource.js';
import type { PassThroughRequest, PassThroughResult } from '../../domain/use-cases/pass-through.js';
import type { Resolution } from '../../domain/use-cases/resolution.js';
import { UserCheckFailed } from '../../domain/use-cases/admit-client.js';
import { cacheStatusValue } from '../../domain/use-cases/resolution.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { EventName } from '../../domain/events/events.js';
import { ErrorCode, GovernorWaitExceeded, MirrorError, isMirrorError } from '../../domain/errors.js';
import { HOP_BY_HOP } from '../../domain/http-semantics.js';
import type { HeaderMap } from '../../domain/model.js';
import { parseTarget, type ParsedTarget } from './request-target.js';
import { UrlRewriter } from './url-rewriter.js';
import { errorJson, statusForCode } from './errors.js';

const gzipAsync = promisify(gzip);

export interface ReadinessReport {
  ready: boolean;
  [detail: string]: unknown;
}

export interface HttpAdapterDeps {
  resolveResource: { execute(request: ResolveRequest): Promise<Resolution> };
  passThrough: { execute(request: PassThroughRequest): Promise<PassThroughResult> };
  events: EventBusPort;
  readiness: () => ReadinessReport;
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** Optional admission check (allowlist): rejects with a MirrorError to refuse a request. */
  admit?: (credential: string | undefined) => Promise<void>;
  logger: FastifyBaseLogger;
}

export interface HttpAdapterOptions {
  upstreamUrl: string;
  /** Public base URL of the mirror; '' = derive from the request. */
  publicUrl: string;
  trustProxy: boolean;
  bodyLimitBytes: number;
  rewriteBodyUrls: boolean;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** Bodies at least this large are gzipped for clients that accept it. */
const GZIP_MIN_BYTES = 1024;
const RESERVED = new Set(['/healthz', '/readyz', '/metrics']);
/** pino's level numbers: a line is written when its level is at least the logger's. */
const LEVEL_RANK: Record<string, number> & { debug: number; info: number; warn: number } = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

interface RequestState {
  outcome: string;
  /** Set once a pass-through answer's body is being streamed from upstream. */
  streamingUpstream?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    mirror: RequestState;
  }
}

/**
 * The HTTP edge: translates client requests into use-case calls and resolutions into answers.
 * Built in a function, listened to elsewhere (tests use real sockets or inject()).
 */
export function buildHttpServer(deps: HttpAdapterDeps, options: HttpAdapterOptions): FastifyInstance {
  const rewriter = new UrlRewriter(options.upstreamUrl.replace(/\/+$/, ''));
  const configuredPublic = options.publicUrl.replace(/\/+$/, '');
  const gzipped = new WeakMap<Uint8Array, Map<string, Buffer>>();

  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    requestTimeout: options.requestTimeoutMs,
    bodyLimit: options.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 10_000 },
    // Targets the router itself refuses (malformed percent-encoding, over-long parameters): the same
    // {"message","code"} JSON as every other error the mirror makes, without echoing the target.
    frameworkErrors(error, request, reply) {
      request.mirror ??= { outcome: 'NONE' };
      const badUrl = error.code === 'FST_ERR_BAD_URL';
      const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      void (reply as FastifyReply)
        .code(status)
        .type('application/json; charset=utf-8')
        .send(errorJson(badUrl ? 'request path has a malformed percent-encoding' : 'request target refused', badUrl ? ErrorCode.BAD_REQUEST_TARGET : error.code));
    },
    clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const message = status === 431 ? 'Request headers too large' : status === 408 ? 'Request timed out' : 'Malformed HTTP request';
      const body = errorJson(message, status === 408 ? 'REQUEST_TIMEOUT' : status === 431 ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST');
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${message}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else {
        socket.destroy();
      }
    },
  });
  app.server.headersTimeout = options.headersTimeoutMs;
  // Node enforces headersTimeout / requestTimeout only when it checks connections (every 30 s by
  // default): check often enough that a slow client gets its 408 close to the configured time.
  (app.server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(Math.min(options.headersTimeoutMs, options.requestTimeoutMs) / 4)));
  // CONNECT (authority-form) is a tunnel request: refused, never opened.
  app.server.on('connect', (_request: IncomingMessage, socket: Socket) => {
    const body = errorJson('CONNECT is not supported: the mirror is not a forward proxy', ErrorCode.BAD_REQUEST_TARGET);
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });

  app.decorateRequest('mirror', null as unknown as RequestState);
  app.addHook('onRequest', (request, _reply, done) => {
    request.mirror = { outcome: 'NONE' };
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    deps.events.emit({
      name: EventName.httpCompleted,
      method: request.method,
      status: reply.statusCode,
      outcome: request.mirror.outcome,
      durationMs: reply.elapsedTime,
    });
    // One line per answer: 5xx at warn, the rest at info (log.level=warn keeps only the failures);
    // probes and scrapes of the reserved paths at debug.
    const status = reply.statusCode;
    const level = RESERVED.has(request.routeOptions.url ?? '') ? 'debug' : status >= 500 ? 'warn' : 'info';
    if ((LEVEL_RANK[request.log.level] ?? 0) <= LEVEL_RANK[level]) {
      const line: Record<string, unknown> = {
        method: request.method,
        path: safePath(request.raw.url),
        status,
        outcome: request.mirror.outcome,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      };
      const length = reply.getHeader('content-length');
      if (length !== undefined) line.bytes = Number(length);
      const staleAge = reply.getHeader('x-cache-stale-age');
      if (staleAge !== undefined) line.staleAgeSeconds = Number(staleAge);
      request.log[level](line, 'request');
    }
    done();
  });

  // Bodies are streamed upstream untouched, whatever their type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: unknown) => void) => {
    done(null, payload);
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof UserCheckFailed) {
      // The allowlist's GET /user answer (GitHub's 401, a rate limit, an upstream error) relayed as it is.
      const answer = error.answer;
      request.mirror.outcome = answer.outcome;
      const out: Record<string, string> = { ...answer.headers, 'x-cache': answer.outcome, 'cache-status': cacheStatusValue(answer) };
      if (answer.staleAgeSeconds !== undefined) out['x-cache-stale-age'] = String(answer.staleAgeSeconds);
      void reply.code(answer.status).headers(out).send(Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength));
      return;
    }
    if (request.mirror.streamingUpstream === true && !isMirrorError(error)) {
      // The upstream body broke before a byte reached the client (after that, fastify cuts the client
      // connection itself, so a partial body never looks complete): an upstream failure, not a mirror bug.
      const timeout = error.code === 'UND_ERR_BODY_TIMEOUT';
      const outcome = timeout ? 'API_TIMEOUT_MISS' : 'API_CONNECTION_ERROR_MISS';
      const code = timeout ? ErrorCode.UPSTREAM_TIMEOUT : ErrorCode.UPSTREAM_UNREACHABLE;
      request.mirror.outcome = outcome;
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
      void reply
        .code(statusForCode(code))
        .headers({ 'x-cache': outcome, 'cache-status': cacheStatusValue({ outcome, collapsed: false, fromCache: false }) })
        .type('application/json; charset=utf-8')
        .send(errorJson(timeout ? 'GitHub did not answer in time' : 'GitHub closed the connection in the middle of the answer', code));
      return;
    }
    if (isMirrorError(error)) {
      if (error instanceof GovernorWaitExceeded) void reply.header('retry-after', String(error.retryAfterSeconds));
      void reply.code(statusForCode(error.code)).type('application/json; charset=utf-8').send(errorJson(error.message, error.code));
      return;
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      void reply.code(error.statusCode).type('application/json; charset=utf-8').send(errorJson(error.message, error.code ?? 'BAD_REQUEST'));
      return;
    }
    request.log.error({ err: error }, 'unexpected error');
    void reply.code(500).type('application/json; charset=utf-8').send(errorJson('Internal mirror error', ErrorCode.INTERNAL));
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(405).type('application/json; charset=utf-8').send(errorJson('Method not supported by the mirror', ErrorCode.METHOD_NOT_ALLOWED));
  });

  app.get('/healthz', (_request, reply) => {
    void reply.type('text/plain; charset=utf-8').send('OK');
  });
  app.get('/readyz', (_request, reply) => {
    const report = deps.readiness();
    void reply.code(report.ready ? 200 : 503).header('cache-control', 'no-store').send(report);
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await deps.metrics();
    return reply.type(contentType).send(body);
  });

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const raw = request.raw.url ?? '';
    const check = parseTarget(raw);
    if (!check.ok) throw new MirrorError(ErrorCode.BAD_REQUEST_TARGET, check.reason);
    const target = check.target;
    if (target.prefix === '' && RESERVED.has(target.path)) {
      throw new MirrorError(ErrorCode.METHOD_NOT_ALLOWED, `${target.path} answers GET only`);
    }
    const headers = forwardableHeaders(request.headers);
    const authorization = request.headers.authorization;
    const credential = typeof authorization === 'string' && authorization !== '' ? authorization : undefined;
    if (deps.admit) await deps.admit(credential);
    const publicBase = publicBaseFor(request, configuredPublic, options) + target.prefix;

    if (request.method === 'GET' || request.method === 'HEAD') {
      const resolution = await deps.resolveResource.execute({
        method: request.method,
        target: target.forward,
        path: target.path,
        query: target.query,
        headers,
        credential,
      });
      await sendResolution(request, reply, resolution, publicBase);
      return;
    }
    await forward(request, reply, target, headers, credential, publicBase);
  };

  async function sendResolution(request: FastifyRequest, reply: FastifyReply, resolution: Resolution, publicBase: string): Promise<void> {
    request.mirror.outcome = resolution.outcome;
    const out: Record<string, string> = { ...resolution.headers };
    if (out['link'] !== undefined) out['link'] = rewriter.rewriteHeader(out['link'], publicBase);
    if (out['location'] !== undefined) out['location'] = rewriter.rewriteHeader(out['location'], publicBase);
    out['x-cache'] = resolution.outcome;
    out['cache-status'] = cacheStatusValue(resolution);
    if (resolution.staleAgeSeconds !== undefined) out['x-cache-stale-age'] = String(resolution.staleAgeSeconds);
    let body = Buffer.from(resolution.body.buffer, resolution.body.byteOffset, resolution.body.byteLength);
    if (options.rewriteBodyUrls && body.byteLength > 0 && isTextual(out['content-type'])) {
      body = rewriter.rewriteBody(body, publicBase);
    }
    if (body.byteLength >= GZIP_MIN_BYTES && acceptsGzip(request.headers['accept-encoding'])) {
      body = await gzipOnce(resolution.body, body, publicBase);
      out['content-encoding'] = 'gzip';
      out['vary'] = addVary(out['vary'], 'Accept-Encoding');
    }
    void reply.code(resolution.status).headers(out);
    if (resolution.status === 304 || resolution.status === 204) {
      await reply.send();
      return;
    }
    await reply.send(body);
  }

  /** gzip a served body once per (entry body, public base) while the entry object lives. */
  async function gzipOnce(source: Uint8Array, body: Buffer, publicBase: string): Promise<Buffer> {
    let variants = gzipped.get(source);
    const hit = variants?.get(publicBase);
    if (hit) return hit;
    const compressed = await gzipAsync(body, { level: 6 });
    if (!variants) {
      variants = new Map();
      gzipped.set(source, variants);
    }
    if (variants.size < 4) variants.set(publicBase, compressed);
    return compressed;
  }

  async function forward(
    request: FastifyRequest,
    reply: FastifyReply,
    target: ParsedTarget,
    headers: HeaderMap,
    credential: string | undefined,
    publicBase: string,
  ): Promise<void> {
    const declared = request.headers['content-length'];
    if (declared !== undefined && Number(declared) > options.bodyLimitBytes) {
      throw new MirrorError(ErrorCode.REQUEST_BODY_TOO_LARGE, `request body larger than ${options.bodyLimitBytes} bytes`);
    }
    const hasBody = (declared !== undefined && declared !== '0') || request.headers['transfer-encoding'] !== undefined;
    const passRequest: PassThroughRequest = { method: request.method, target: target.forward, headers, credential };
    if (hasBody) passRequest.body = limited(request.raw, options.bodyLimitBytes, declared === undefined ? undefined : Number(declared));
    const result = await deps.passThrough.execute(passRequest);
    request.mirror.outcome = result.outcome;
    const out: Record<string, string> = { ...result.headers, 'x-cache': result.outcome };
    out['cache-status'] = cacheStatusValue({ ...result, collapsed: false, fromCache: false });
    if (out['link'] !== undefined) out['link'] = rewriter.rewriteHeader(out['link'], publicBase);
    if (out['location'] !== undefined) out['location'] = rewriter.rewriteHeader(out['location'], publicBase);
    void reply.code(result.status).headers(out);
    if (result.body instanceof Uint8Array) {
      await reply.send(Buffer.from(result.body));
      return;
    }
    request.mirror.streamingUpstream = true;
    await reply.send(result.body);
  }

  app.all('/*', handler);
  app.all('/', handler);
  return app;
}

/**
 * Client headers as forwarded: hop-by-hop, Connection-listed, Host and Expect removed (the mirror's own
 * server answers `Expect: 100-continue`; the expectation is about this hop, and undici refuses to send it).
 */
export function forwardableHeaders(headers: FastifyRequest['headers']): HeaderMap {
  const out: HeaderMap = {};
  const connection = headers.connection;
  const listed = typeof connection === 'string' ? new Set(connection.toLowerCase().split(',').map((s) => s.trim())) : undefined;
  for (const name in headers) {
    if (name === 'host' || name === 'expect' || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

function publicBaseFor(request: FastifyRequest, configured: string, options: HttpAdapterOptions): string {
  if (configured !== '') return configured;
  let proto = options.tls ? 'https' : 'http';
  let host = request.headers.host ?? 'localhost';
  if (options.trustProxy) {
    const fProto = request.headers['x-forwarded-proto'];
    const fHost = request.headers['x-forwarded-host'];
    if (typeof fProto === 'string' && /^https?$/i.test(fProto.split(',')[0]?.trim() ?? '')) proto = (fProto.split(',')[0] ?? proto).trim().toLowerCase();
    if (typeof fHost === 'string' && fHost !== '') host = (fHost.split(',')[0] ?? host).trim();
  }
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(host)) host = 'localhost';
  return `${proto}://${host}`;
}

function isTextual(contentType: string | undefined): boolean {
  return contentType === undefined || contentType.includes('json') || contentType.startsWith('text/');
}

function acceptsGzip(value: string | string[] | undefined): boolean {
  const header = Array.isArray(value) ? value.join(',') : value;
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

function addVary(vary: string | undefined, name: string): string {
  if (vary === undefined || vary === '') return name;
  return vary.toLowerCase().split(',').some((v) => v.trim() === name.toLowerCase()) ? vary : `${vary}, ${name}`;
}

/**
 * A request body stream that refuses to grow past the limit. A body that breaks off (client gone, or
 * cut by server.requestTimeoutMs) fails with REQUEST_BODY_INCOMPLETE, so the upstream call it feeds
 * is not mistaken for an upstream failure (the upstream breaker ignores it).
 */
async function* limited(source: AsyncIterable<Uint8Array>, limit: number, declared: number | undefined): AsyncIterable<Uint8Array> {
  let total = 0;
  try {
    for await (const chunk of source) {
      total += chunk.byteLength;
      if (total > limit) throw new MirrorError(ErrorCode.REQUEST_BODY_TOO_LARGE, `request body larger than ${limit} bytes`);
      yield chunk;
    }
  } catch (error) {
    if (isMirrorError(error)) throw error;
    throw new MirrorError(ErrorCode.REQUEST_BODY_INCOMPLETE, 'the client request body broke off', { cause: error });
  }
  if (declared !== undefined && Number.isFinite(declared) && total < declared) {
    throw new MirrorError(ErrorCode.REQUEST_BODY_INCOMPLETE, 'the client request body is shorter than its Content-Length');
  }
}

/** The request path for logs, with token-like query parameters masked. */
export function safePath(url: string | undefined): string {
  if (url === undefined) return '';
  return url.replace(/([?&](?:access_token|token|client_secret|code|state)=)[^&]*/gi, '$1[redacted]').slice(0, 512);
}
