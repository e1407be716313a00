/**
 * The proxied routes (a fastify plugin): every path but the reserved ones. GET and HEAD go to
 * resolveResource (cached), answered by get-edge.ts; other methods to passThrough (the request body
 * read whole first, held to server.bodyLimitBytes and server.bodyTimeoutMs, so a slow client never
 * holds an upstream connection; the answer streamed back). Answers get their upstream URLs rewritten
 * to the mirror's public URL, X-Cache and Cache-Status.
 *
 * **The GET fast path.** A GET or HEAD whose target passes the checks is answered before fastify's
 * router sees it: the plugin puts itself in front of the server's 'request' listener, and GetEdge
 * answers on node's response directly, with the access log's bookkeeping (access-log.ts) done here.
 * That skips fastify's Request and Reply objects, hooks and reply.send() for the requests that are
 * nearly all of a mirror's load (docs/performance.md). Everything else — other methods, refused
 * targets, the reserved paths, every request once the server is closing (fastify answers those
 * 503) — goes to fastify as before, and so do inject()'s requests, which reach fastify's route for
 * GET and HEAD: it hands a hijacked reply to the same GetEdge.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ResolveRequest } from '../../domain/use-cases/resolve-resource.js';
import type { PassThroughRequest, PassThroughResult } from '../../domain/use-cases/pass-through.js';
import type { Resolution } from '../../domain/resolution.js';
import { ErrorCode, MirrorError } from '../../domain/errors.js';
import type { HeaderMap } from '../../domain/model.js';
import { parseTarget, type ParsedTarget } from './request-target.js';
import { UrlRewriter } from './url-rewriter.js';
import { BodyVariants } from './body-variants.js';
import { definePlugin, requireOption } from './plugin.js';
import { REQUEST_LOG_PLUGIN } from './request-log.plugin.js';
import { ERRORS_PLUGIN, sendFailure } from './errors.plugin.js';
import { GetEdge } from './get-edge.js';
import { requestIds } from './access-log.js';
import { copyHeaders, credentialOf, forwardableHeaders, publicBaseFor } from './forwarding.js';
import { cacheStatusValue } from './cache-status.js';
import { RESERVED_PATHS } from './reserved-routes.plugin.js';

/** Bytes of rewritten and gzipped bodies kept (BodyVariants), unless the options say otherwise. */
export const BODY_VARIANTS_MAX_BYTES = 16 * 1024 * 1024;

/** Targets longer than fastify's router takes as a parameter (routerOptions.maxParamLength) are left to fastify. */
const FAST_PATH_MAX_TARGET = 10_000;

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
  /** The server's request ids (fastify's genReqId), so the fast path's ids continue the same sequence. */
  requestIds?: () => string;
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

    const publicBase = { configured: configuredPublic, https: options.https, trustProxy: options.trustProxy };
    const log = app.log;
    const edge = new GetEdge({
      resolveResource: options.resolveResource,
      ...(options.admit ? { admit: options.admit } : {}),
      rewriter,
      variants,
      publicBase,
      rewriteBodyUrls: options.rewriteBodyUrls,
      unexpected: (reqId, err) => log.error({ reqId, err }, 'unexpected error'),
    });

    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const parsed = parseTarget(request.raw.url ?? '');
      if (!parsed.ok) throw new MirrorError(ErrorCode.BAD_REQUEST_TARGET, parsed.reason);
      const target = parsed.target;
      if (target.prefix === '' && RESERVED_PATHS.has(target.path)) {
        throw new MirrorError(ErrorCode.METHOD_NOT_ALLOWED, `${target.path} answers GET only`);
      }
      if (request.method === 'GET' || request.method === 'HEAD') {
        // the fast path's answer on this route's request (fastify's hooks still log it)
        reply.hijack();
        await edge.serve(request.raw, reply.raw, target, request.mirror, request.id);
        return;
      }
      const credential = credentialOf(request.headers);
      if (options.admit) await options.admit(credential);
      await forward(request, reply, target, forwardableHeaders(request.headers), credential, publicBaseFor(request.headers, publicBase) + target.prefix);
    };

    // The GET fast path: in front of fastify's own listener of the server's requests.
    const accessLog = app.mirrorAccessLog;
    const nextId = options.requestIds ?? requestIds();
    let closing = false;
    const fastPath = (req: IncomingMessage, res: ServerResponse): boolean => {
      if (closing || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
      const url = req.url;
      if (url === undefined || url.length > FAST_PATH_MAX_TARGET) return false;
      const parsed = parseTarget(url);
      if (!parsed.ok || (parsed.target.prefix === '' && RESERVED_PATHS.has(parsed.target.path))) return false;
      const id = nextId();
      const state = accessLog.begin(req.method, url);
      // 'close' follows 'finish' on a complete answer, and comes alone when the client went away first
      res.once('close', () => {
        if (res.writableFinished) accessLog.complete(state, { id, status: res.statusCode, ms: performance.now() - state.since, authorization: req.headers.authorization });
        else accessLog.abandon(state);
      });
      void edge.serve(req, res, parsed.target, state, id);
      return true;
    };
    const server = app.server;
    const routing = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (fastPath(req, res)) return;
      for (const listener of routing) listener(req, res);
    };
    server.removeAllListeners('request');
    server.on('request', onRequest);
    // from fastify's close() on, requests go to fastify, which answers them 503 (return503OnClosing)
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });
    app.addHook('onClose', (_app, done) => {
      server.off('request', onRequest);
      for (const listener of routing) server.on('request', listener);
      done();
    });

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
