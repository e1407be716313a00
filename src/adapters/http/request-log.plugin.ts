/**
 * The access log (a fastify plugin): every request carries its outcome (`request.mirror`), and every
 * answer ends with one `http.request.completed` event and one log line — 5xx at warn, the rest at
 * info (log.level=warn, or log.requests=false, keeps only the failures), probes and scrapes of the
 * reserved paths at debug.
 * An answer made because upstream failed says why (`cause`). Token-like query parameters are masked
 * in the logged path; the credential appears only as `hashed_token` (base64 SHA-256 of the token, as
 * GitHub's audit log names it). The requests not answered yet are listed by `app.mirrorInFlight()`
 * (what a shutdown cut at the end of its grace period).
 *
 * The line is cheap: it is assembled by access-line.ts from the pieces of a child of the server
 * logger (pino's own prefix, time, bindings) without pino's path redaction — its fields are the
 * plugin's own: method, masked path, status, outcome, times, sizes, the mirror's own cause, the
 * hashed token, none of them a redacted path — and the logger's pattern pass still runs over it. The
 * request id comes first, so the line is the one the request's own child logger would write; that
 * child is only made when something else logs for the request (lazy-child-logger.ts).
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { EventName } from '../../domain/events/events.js';
import { definePlugin, requireOption } from './plugin.js';
import { RESERVED_PATHS } from './reserved-routes.plugin.js';
import { accessLineWriter, type AccessFields, type AccessLineWriter } from './access-line.js';
import { HashedTokens } from '../crypto/hashed-token.js';

/** What the edge knows about a request while answering it. */
export interface RequestState {
  outcome: string;
  /** Set once a pass-through answer's body is being streamed from upstream. */
  streamingUpstream?: boolean;
  /** Why upstream failed (a 502/504 the mirror made, or a stale answer served instead), logged as `cause`. */
  cause?: string;
  /** Answered by a route of the reserved paths (/healthz, /readyz, /metrics). */
  reserved?: true;
}

function markReserved(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  request.mirror.reserved = true;
  done();
}

/** A request not answered yet, as a shutdown that cuts it reports it. */
export interface InFlightRequest {
  method: string;
  /** Token-like query parameters masked. */
  path: string;
  /** Time since it arrived. */
  ms: number;
  outcome: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    mirror: RequestState;
  }
  interface FastifyInstance {
    /** The requests not answered yet (oldest first). */
    mirrorInFlight(): InFlightRequest[];
  }
}

export const REQUEST_LOG_PLUGIN = 'mirror-request-log';

export interface RequestLogOptions {
  events: EventBusPort;
  /** A line per answer (default); false = only the lines of failed answers (5xx, at warn). */
  requests?: boolean;
}

/** fastify types its loggers without pino's isLevelEnabled; the loggers themselves (pino and its children) have it. */
type LevelAwareLogger = FastifyBaseLogger & Pick<Logger, 'isLevelEnabled'>;

function isLevelAware(logger: FastifyBaseLogger): logger is LevelAwareLogger {
  return typeof (logger as Partial<LevelAwareLogger>).isLevelEnabled === 'function';
}

export const requestLogPlugin = definePlugin<RequestLogOptions>({ name: REQUEST_LOG_PLUGIN }, (app, options) => {
  requireOption(REQUEST_LOG_PLUGIN, typeof options.events?.emit === 'function', 'options.events must be an event bus');
  requireOption(REQUEST_LOG_PLUGIN, isLevelAware(app.log), 'the server logger must be a pino logger (isLevelEnabled)');

  const hashedTokens = new HashedTokens();
  const everyAnswer = options.requests !== false;
  // Gated by the server logger's level; written through a child that has every level on.
  const server = app.log as LevelAwareLogger;
  const access = server.child({}, { level: 'trace', redact: [] });
  const writeLine: AccessLineWriter = accessLineWriter(access as unknown as Logger) ?? ((level, fields, msg) => access[level](fields, msg));
  app.decorateRequest('mirror', null as unknown as RequestState);
  const inFlight = new Map<FastifyRequest, number>();
  app.decorate('mirrorInFlight', (): InFlightRequest[] => {
    const now = performance.now();
    return [...inFlight].map(([request, since]) => ({
      method: request.method,
      path: safePath(request.raw.url),
      ms: Math.round(now - since),
      outcome: request.mirror.outcome,
    }));
  });
  // The routes of the reserved paths mark their requests (their answers are logged at debug): a hook
  // of those routes alone, so other requests pay nothing (request.routeOptions builds an object).
  app.addHook('onRoute', (route) => {
    if (!RESERVED_PATHS.has(route.url)) return;
    const existing = route.onRequest;
    route.onRequest = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), markReserved];
  });
  app.addHook('onRequest', (request, _reply, done) => {
    request.mirror = { outcome: 'NONE' };
    inFlight.set(request, performance.now());
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    inFlight.delete(request);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    inFlight.delete(request);
    const status = reply.statusCode;
    options.events.emit({
      name: EventName.httpCompleted,
      method: request.method,
      status,
      outcome: request.mirror.outcome,
      durationMs: reply.elapsedTime,
    });
    const level = request.mirror.reserved === true ? 'debug' : status >= 500 ? 'warn' : 'info';
    if ((level === 'warn' || everyAnswer) && server.isLevelEnabled(level)) {
      const line: AccessFields = {
        reqId: request.id,
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
      if (request.mirror.cause !== undefined) line.cause = request.mirror.cause;
      const authorization = request.headers.authorization;
      const hashedToken = hashedTokens.of(typeof authorization === 'string' ? authorization : undefined);
      if (hashedToken !== undefined) line.hashed_token = hashedToken;
      writeLine(level, line, 'request');
    }
    done();
  });
});

/** The request path for logs, with token-like query parameters masked. */
export function safePath(url: string | undefined): string {
  if (url === undefined) return '';
  if (!url.includes('?')) return url.length > 512 ? url.slice(0, 512) : url;
  return url.replace(/([?&](?:access_token|token|client_secret|code|state)=)[^&]*/gi, '$1[redacted]').slice(0, 512);
}
