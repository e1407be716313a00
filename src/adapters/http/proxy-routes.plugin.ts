/**
 * The proxied routes (a fastify plugin): every path but the reserved ones. GET and HEAD go to
 * resolveResource (cached), other methods to passThrough (the request body read whole first, held to
 * server.bodyLimitBytes and server.bodyTimeoutMs, so a slow client never holds an upstream
 * connection; the answer streamed back). Answers get their upstream URLs rewritten to the mirror's public URL,
 * X-Cache and Cache-Status, and gzip for clients that accept it (compressed once per entry body).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { ResolveRequest } from '../../domain/use-cases/resolve-resource.js';
import type { PassThroughRequest, PassThroughResult } from '../../domain/use-cases/pass-through.js';
import type { Resolution } from '../../domain/resolution.js';
import { ErrorCode, MirrorError } from '../../domain/errors.js';
import { HOP_BY_HOP } from '../../domain/http-semantics.js';
import type { HeaderMap } from '../../domain/model.js';
import { parseTarget, type ParsedTarget } from './request-target.js';
import { UrlRewriter } from './url-rewriter.js';
import { BodyVariants } from './body-variants.js';
import { definePlugin, requireOption } from './plugin.js';
import { REQUEST_LOG_PLUGIN } from './request-log.plugin.js';
import { ERRORS_PLUGIN, sendFailure } from './errors.plugin.js';
import { cacheStatusValue } from './cache-status.js';
import { RESERVED_PATHS } from './reserved-routes.plugin.js';

const gzipAsync = promisify(gzip);

/** Bodies at least this large are gzipped for clients that accept it. */
const GZIP_MIN_BYTES = 1024;
/** Bytes of rewritten and gzipped bodies kept (BodyVariants), unless the options say otherwise. */
export const BODY_VARIANTS_MAX_BYTES = 16 * 1024 * 1024;

const EMPTY_BODY: Buffer = Buffer.alloc(0);

const gzipBody = (body: Buffer): Promise<Buffer> => gzipAsync(body, { level: 6 });

export interface ProxyRoutesOptions {
  resolveResource: { execute(request: ResolveRequest): Promise<Resolution> };
  passThrough: { execute(request: PassThroughRequest): Promise<PassThroughResult> };
  /** Optional admission check (allowlist): rejects with a MirrorError to refuse a request. */
  admit?: (credential: string | undefined) => Promise<void>;
  upstreamUrl: string;
  /** Public base URL of the mirror; '' = derive from the request. */
  publicUrl: string;
  trustProxy: boolean;
  /** The server listens with TLS: a derived public URL is https. */
  https: boolean;
  bodyLimitBytes: number;
  /** Time a client has to send a request body once its head arrived (408 REQUEST_TIMEOUT after it). */
  bodyTimeoutMs: number;
  rewriteBodyUrls: boolean;
  /** Bound of the rewritten and gzipped bodies kept (default BODY_VARIANTS_MAX_BYTES). */
  bodyVariantsMaxBytes?: number;
}

export const PROXY_ROUTES_PLUGIN = 'mirror-proxy-routes';

export const proxyRoutesPlugin = definePlugin<ProxyRoutesOptions>(
  { name: PROXY_ROUTES_PLUGIN, dependencies: [REQUEST_LOG_PLUGIN, ERRORS_PLUGIN], decorators: { request: ['mirror'] } },
  (app, options) => {
    const check = (condition: boolean, what: string) => requireOption(PROXY_ROUTES_PLUGIN, condition, what);
    check(typeof options.resolveResource?.execute === 'function', 'options.resolveResource must have execute()');
    check(typeof options.passThrough?.execute === 'function', 'options.passThrough must have execute()');
    check(options.admit === undefined || typeof options.admit === 'function', 'options.admit must be a function when given');
    check(isHttpUrl(options.upstreamUrl), 'options.upstreamUrl must be an http(s) URL');
    check(options.publicUrl === '' || isHttpUrl(options.publicUrl), "options.publicUrl must be '' or an http(s) URL");
    check(Number.isSafeInteger(options.bodyLimitBytes) && options.bodyLimitBytes > 0, 'options.bodyLimitBytes must be a positive integer');
    check(Number.isSafeInteger(options.bodyTimeoutMs) && options.bodyTimeoutMs > 0, 'options.bodyTimeoutMs must be a positive integer');

    const rewriter = new UrlRewriter(options.upstreamUrl.replace(/\/+$/, ''));
    const configuredPublic = options.publicUrl.replace(/\/+$/, '');
    /** Served bodies rewritten and gzipped once per entry body and public base, not per answer. */
    const variants = new BodyVariants(options.bodyVariantsMaxBytes ?? BODY_VARIANTS_MAX_BYTES);
    app.addHook('onClose', (_app, done) => {
      variants.clear();
      done();
    });

    // Bodies are streamed upstream untouched, whatever their type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request: FastifyRequest, payload: IncomingMessage, done: (err: Error | null, body?: unknown) => void) => {
      done(null, payload);
    });

    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const raw = request.raw.url ?? '';
      const parsed = parseTarget(raw);
      if (!parsed.ok) throw new MirrorError(ErrorCode.BAD_REQUEST_TARGET, parsed.reason);
      const target = parsed.target;
      if (target.prefix === '' && RESERVED_PATHS.has(target.path)) {
        throw new MirrorError(ErrorCode.METHOD_NOT_ALLOWED, `${target.path} answers GET only`);
      }
      const headers = forwardableHeaders(request.headers);
      const authorization = request.headers.authorization;
      const credential = typeof authorization === 'string' && authorization !== '' ? authorization : undefined;
      if (options.admit) await options.admit(credential);
      const publicBase = publicBaseFor(request, configuredPublic, options) + target.prefix;

      if (request.method === 'GET' || request.method === 'HEAD') {
        const resolution = await options.resolveResource.execute({
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
      if (resolution.error !== undefined) {
        if (resolution.error.cause !== undefined) request.mirror.cause = resolution.error.cause;
        await sendFailure(reply, resolution.error, resolution);
        return;
      }
      if (resolution.upstreamCause !== undefined) request.mirror.cause = resolution.upstreamCause;
      // The answer's headers go to fastify's own store as they are (it copies them; they may be the
      // cached entry's object), then the edge's own over them — no copy of the set per answer here.
      const headers = resolution.headers;
      void reply.code(resolution.status).headers(headers);
      const link = headers['link'];
      if (link !== undefined) void reply.header('link', rewriter.rewriteHeader(link, publicBase));
      const location = headers['location'];
      if (location !== undefined) void reply.header('location', rewriter.rewriteHeader(location, publicBase));
      void reply.header('x-cache', resolution.outcome).header('cache-status', cacheStatusValue(resolution));
      if (resolution.staleAgeSeconds !== undefined) void reply.header('x-cache-stale-age', String(resolution.staleAgeSeconds));
      const source = resolution.body;
      let body = EMPTY_BODY;
      if (source.byteLength > 0) {
        body = variants.served(source, publicBase, options.rewriteBodyUrls && isTextual(headers['content-type']) ? rewriter : undefined);
        if (body.byteLength >= GZIP_MIN_BYTES && acceptsGzip(request.headers['accept-encoding'])) {
          body = await variants.gzipped(source, publicBase, body, gzipBody);
          void reply.header('content-encoding', 'gzip').header('vary', addVary(headers['vary'], 'Accept-Encoding'));
        }
      }
      if (resolution.status === 304 || resolution.status === 204) {
        await reply.send();
        return;
      }
      await reply.send(body);
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
      if (hasBody) {
        try {
          passRequest.body = await readRequestBody(request.raw, options.bodyLimitBytes, declared === undefined ? undefined : Number(declared), options.bodyTimeoutMs);
        } catch (error) {
          // The rest of the body is not read: the connection cannot carry another request.
          void reply.header('connection', 'close');
          throw error;
        }
      }
      const result = await options.passThrough.execute(passRequest);
      request.mirror.outcome = result.outcome;
      if (result.error !== undefined) {
        if (result.error.cause !== undefined) request.mirror.cause = result.error.cause;
        await sendFailure(reply, result.error, { outcome: result.outcome, collapsed: false, fromCache: false });
        return;
      }
      const out = copyHeaders(result.headers);
      out['x-cache'] = result.outcome;
      out['cache-status'] = cacheStatusValue({ ...result, collapsed: false, fromCache: false });
      if (out['link'] !== undefined) out['link'] = rewriter.rewriteHeader(out['link'], publicBase);
      if (out['location'] !== undefined) out['location'] = rewriter.rewriteHeader(out['location'], publicBase);
      void reply.code(result.status).headers(out);
      request.mirror.streamingUpstream = true;
      await reply.send(result.body);
    }

    app.all('/*', handler);
    app.all('/', handler);
  },
);

/**
 * A copy of an answer's headers for the edge to add its own to. Key by key, not `{ ...headers }`:
 * V8 gives every spread copy that is then written to a hidden class of its own (microseconds and
 * old-generation garbage per answer).
 */
function copyHeaders<V>(headers: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const name in headers) out[name] = headers[name] as V;
  return out;
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * Client headers as forwarded: hop-by-hop, Connection-listed, Host and Expect removed (the mirror's own
 * server answers `Expect: 100-continue`; the expectation is about this hop, and undici refuses to send it).
 */
export function forwardableHeaders(headers: FastifyRequest['headers']): HeaderMap {
  const out: HeaderMap = {};
  const connection = headers.connection;
  const listed = typeof connection === 'string' ? connectionTokens(connection) : undefined;
  for (const name in headers) {
    if (name === 'host' || name === 'expect' || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

/** Connection header values seen, with their tokens: a handful of distinct values ("keep-alive", "close") serve every request. */
const connectionValues = new Map<string, ReadonlySet<string>>();

function connectionTokens(value: string): ReadonlySet<string> {
  let tokens = connectionValues.get(value);
  if (tokens === undefined) {
    tokens = new Set(value.toLowerCase().split(',').map((s) => s.trim()));
    if (connectionValues.size >= 64) connectionValues.clear();
    connectionValues.set(value, tokens);
  }
  return tokens;
}

function publicBaseFor(request: FastifyRequest, configured: string, options: Pick<ProxyRoutesOptions, 'https' | 'trustProxy'>): string {
  if (configured !== '') return configured;
  let proto = options.https ? 'https' : 'http';
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
 * The whole request body, read before any upstream connection is taken. Larger than the limit:
 * REQUEST_BODY_TOO_LARGE; not complete within `timeoutMs`: REQUEST_TIMEOUT; broken off (client gone,
 * or cut by server.requestTimeoutMs) or shorter than its Content-Length: REQUEST_BODY_INCOMPLETE.
 */
function readRequestBody(source: IncomingMessage, limit: number, declared: number | undefined, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (error: MirrorError | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onBroken);
      source.off('close', onBroken);
      if (error === undefined) {
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
        return;
      }
      source.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > limit) finish(new MirrorError(ErrorCode.REQUEST_BODY_TOO_LARGE, `request body larger than ${limit} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      if (declared !== undefined && Number.isFinite(declared) && total < declared) {
        finish(new MirrorError(ErrorCode.REQUEST_BODY_INCOMPLETE, 'the client request body is shorter than its Content-Length'));
      } else finish(undefined);
    };
    const onBroken = () => finish(new MirrorError(ErrorCode.REQUEST_BODY_INCOMPLETE, 'the client request body broke off'));
    const timer = setTimeout(
      () => finish(new MirrorError(ErrorCode.REQUEST_TIMEOUT, `the request body did not arrive within ${timeoutMs} ms (server.bodyTimeoutMs)`)),
      timeoutMs,
    );
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onBroken);
    source.on('close', onBroken);
  });
}
