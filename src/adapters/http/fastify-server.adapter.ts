/**
 * The HTTP edge: a fastify server that translates client requests into use-case calls and their
 * results into answers. Built here from its plugins — request log, errors, reserved routes, proxy
 * routes, each in its own file — and listened to elsewhere (tests use real sockets or inject()).
 */
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import type { ResolveRequest } from '../../domain/use-cases/resolve-resource.js';
import type { PassThroughRequest, PassThroughResult } from '../../domain/use-cases/pass-through.js';
import type { Resolution } from '../../domain/resolution.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { requestLogPlugin } from './request-log.plugin.js';
import { answerClientError, answerFrameworkError, errorsPlugin } from './errors.plugin.js';
import { reservedRoutesPlugin, type ReadinessReport } from './reserved-routes.plugin.js';
import { proxyRoutesPlugin } from './proxy-routes.plugin.js';
import { lazyChildLogger } from './lazy-child-logger.js';
import { requestIds } from './access-log.js';

export type { ReadinessReport } from './reserved-routes.plugin.js';

export interface HttpAdapterDeps {
  resolveResource: { execute(request: ResolveRequest): Promise<Resolution> };
  passThrough: { execute(request: PassThroughRequest): Promise<PassThroughResult> };
  events: EventBusPort;
  readiness: () => ReadinessReport;
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** Optional admission check (allowlist): rejects with a MirrorError to refuse a request. */
  admit?: (credential: string | undefined) => Promise<void>;
  /** A pino logger (the access log asks it which levels are on). */
  logger: FastifyBaseLogger & Pick<Logger, 'isLevelEnabled'>;
}

export interface HttpAdapterOptions {
  upstreamUrl: string;
  /** Public base URL of the mirror; '' = derive from the request. */
  publicUrl: string;
  trustProxy: boolean;
  bodyLimitBytes: number;
  /** Time a client has to send a request body once its head arrived. */
  bodyTimeoutMs: number;
  rewriteBodyUrls: boolean;
  /** An access-log line per answer (default); false = only the lines of failed answers (5xx). */
  logRequests?: boolean;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export function buildHttpServer(deps: HttpAdapterDeps, options: HttpAdapterOptions): FastifyInstance {
  // fastify types the server by its logger: typed as the base logger, the server is a plain FastifyInstance
  const logger: FastifyBaseLogger = deps.logger;
  const ids = requestIds();
  const app = Fastify({
    genReqId: ids,
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    exposeHeadRoutes: false,
    requestTimeout: options.requestTimeoutMs,
    bodyLimit: options.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 10_000 },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  });
  app.server.headersTimeout = options.headersTimeoutMs;
  // Node enforces headersTimeout / requestTimeout only when it checks connections (every 30 s by
  // default): check often enough that a slow client gets its 408 close to the configured time.
  (app.server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(Math.min(options.headersTimeoutMs, options.requestTimeoutMs) / 4)));

  void app.register(requestLogPlugin, { events: deps.events, requests: options.logRequests ?? true });
  void app.register(errorsPlugin);
  void app.register(reservedRoutesPlugin, { readiness: deps.readiness, metrics: deps.metrics });
  void app.register(proxyRoutesPlugin, {
    resolveResource: deps.resolveResource,
    passThrough: deps.passThrough,
    ...(deps.admit ? { admit: deps.admit } : {}),
    upstreamUrl: options.upstreamUrl,
    publicUrl: options.publicUrl,
    trustProxy: options.trustProxy,
    https: options.tls !== undefined,
    bodyLimitBytes: options.bodyLimitBytes,
    bodyTimeoutMs: options.bodyTimeoutMs,
    rewriteBodyUrls: options.rewriteBodyUrls,
    requestIds: ids,
  });
  return app;
}
