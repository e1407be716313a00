/**
 * The access log (a fastify plugin): every request carries its outcome (`request.mirror`), and every
 * answer ends with one `http.request.completed` event and one log line (access-log.ts, which the GET
 * fast path of proxy-routes.plugin.ts shares: `app.mirrorAccessLog`). An answer made because
 * upstream failed says why (`cause`). The requests not answered yet are listed by
 * `app.mirrorInFlight()` (what a shutdown cut at the end of its grace period).
 *
 * The request id comes first in the line, so the line is the one the request's own child logger
 * would write; that child is only made when something else logs for the request
 * (lazy-child-logger.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { definePlugin, requireOption } from './plugin.js';
import { RESERVED_PATHS } from './reserved-routes.plugin.js';
import { AccessLog, isLevelAware, type Completion, type InFlightRequest, type LevelAwareLogger, type RequestState } from './access-log.js';

export { safePath, type InFlightRequest, type RequestState } from './access-log.js';

function markReserved(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  request.mirror.reserved = true;
  done();
}

declare module 'fastify' {
  interface FastifyRequest {
    mirror: RequestState;
  }
  interface FastifyInstance {
    /** The requests not answered yet (oldest first). */
    mirrorInFlight(): InFlightRequest[];
    /** The access log both ways of answering write to. */
    mirrorAccessLog: AccessLog;
  }
}

export const REQUEST_LOG_PLUGIN = 'mirror-request-log';

export interface RequestLogOptions {
  events: EventBusPort;
  /** A line per answer (default); false = only the lines of failed answers (5xx, at warn). */
  requests?: boolean;
}

export const requestLogPlugin = definePlugin<RequestLogOptions>({ name: REQUEST_LOG_PLUGIN }, (app, options) => {
  requireOption(REQUEST_LOG_PLUGIN, typeof options.events?.emit === 'function', 'options.events must be an event bus');
  requireOption(REQUEST_LOG_PLUGIN, isLevelAware(app.log), 'the server logger must be a pino logger (isLevelEnabled)');

  const log = new AccessLog(app.log as LevelAwareLogger, options.events, options.requests !== false);
  app.decorate('mirrorAccessLog', log);
  app.decorateRequest('mirror', null as unknown as RequestState);
  app.decorate('mirrorInFlight', (): InFlightRequest[] => log.pending());
  // The routes of the reserved paths mark their requests (their answers are logged at debug): a hook
  // of those routes alone, so other requests pay nothing (request.routeOptions builds an object).
  app.addHook('onRoute', (route) => {
    if (!RESERVED_PATHS.has(route.url)) return;
    const existing = route.onRequest;
    route.onRequest = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), markReserved];
  });
  app.addHook('onRequest', (request, _reply, done) => {
    request.mirror = log.begin(request.method, request.raw.url);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    log.abandon(request.mirror);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const completion: Completion = { id: request.id, status: reply.statusCode, ms: reply.elapsedTime, authorization: request.headers.authorization };
    const length = reply.getHeader('content-length');
    if (length !== undefined) completion.bytes = Number(length);
    const staleAge = reply.getHeader('x-cache-stale-age');
    if (staleAge !== undefined) completion.staleAgeSeconds = Number(staleAge);
    log.complete(request.mirror, completion);
    done();
  });
});
