/**
 * The access log's bookkeeping, shared by the two ways a request is answered — through fastify's
 * lifecycle (request-log.plugin.ts's hooks) and on the GET fast path (proxy-routes.plugin.ts), which
 * answers proxied GET and HEAD requests before fastify's router: the requests in flight, the request
 * ids, and at the end of every answer one `http.request.completed` event and one log line — 5xx at
 * warn, the rest at info (log.level=warn, or log.requests=false, keeps only the failures), probes
 * and scrapes of the reserved paths at debug.
 *
 * The credential appears only as `hashed_token` (base64 SHA-256 of the token, as GitHub's audit log
 * names it); token-like query parameters are masked in the logged path. The line is assembled by
 * access-line.ts (see there why it is cheap).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { EventName } from '../../domain/events/events.js';
import { accessLineWriter, type AccessFields, type AccessLineWriter } from './access-line.js';
import { HashedTokens } from '../crypto/hashed-token.js';

/** What the edge knows about a request while answering it. */
export interface RequestState {
  outcome: string;
  readonly method: string;
  /** The raw request target, as received. */
  readonly url: string | undefined;
  /** performance.now() when it arrived. */
  readonly since: number;
  /** Set once a pass-through answer's body is being streamed from upstream. */
  streamingUpstream?: boolean;
  /** Why upstream failed (a 502/504 the mirror made, or a stale answer served instead), logged as `cause`. */
  cause?: string;
  /** Answered by a route of the reserved paths (/healthz, /readyz, /metrics). */
  reserved?: true;
  /** The answer's body length and stale age, when the edge wrote it itself (the fast path, a hijacked reply). */
  bytes?: number;
  staleAgeSeconds?: number;
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

/** How a completed answer is logged: status, the time it took, and what else the line needs. */
export interface Completion {
  id: string;
  status: number;
  ms: number;
  authorization: string | string[] | undefined;
  /** The answer's Content-Length and X-Cache-Stale-Age when the state has not got them. */
  bytes?: number;
  staleAgeSeconds?: number;
}

/** fastify types its loggers without pino's isLevelEnabled; the loggers themselves (pino and its children) have it. */
export type LevelAwareLogger = FastifyBaseLogger & Pick<Logger, 'isLevelEnabled'>;

export function isLevelAware(logger: FastifyBaseLogger): logger is LevelAwareLogger {
  return typeof (logger as Partial<LevelAwareLogger>).isLevelEnabled === 'function';
}

/** 2^31 − 1: ids stay small integers (fastify's own generator wraps there too). */
const MAX_ID = 2147483647;

/** Request ids `req-1`, `req-2`, … (base 36), fastify's format; one sequence for both ways of answering. */
export function requestIds(): () => string {
  let next = 0;
  return () => {
    next = (next + 1) & MAX_ID;
    return `req-${next.toString(36)}`;
  };
}

export class AccessLog {
  private readonly hashedTokens = new HashedTokens();
  private readonly inFlight = new Set<RequestState>();
  private readonly writeLine: AccessLineWriter;

  constructor(
    private readonly server: LevelAwareLogger,
    private readonly events: EventBusPort,
    /** A line per answer; false = only the lines of failed answers (5xx, at warn). */
    private readonly everyAnswer: boolean,
  ) {
    // Gated by the server logger's level; written through a child that has every level on.
    const access = server.child({}, { level: 'trace', redact: [] });
    this.writeLine = accessLineWriter(access as unknown as Logger) ?? ((level, fields, msg) => access[level](fields, msg));
  }

  /** A request arrived: its state, in flight until completed or abandoned. */
  begin(method: string, url: string | undefined): RequestState {
    const state: RequestState = { outcome: 'NONE', method, url, since: performance.now() };
    this.inFlight.add(state);
    return state;
  }

  /** The client went away before its answer was complete: no line, no event. */
  abandon(state: RequestState): void {
    this.inFlight.delete(state);
  }

  complete(state: RequestState, done: Completion): void {
    this.inFlight.delete(state);
    const status = done.status;
    this.events.emit({ name: EventName.httpCompleted, method: state.method, status, outcome: state.outcome, durationMs: done.ms });
    const level = state.reserved === true ? 'debug' : status >= 500 ? 'warn' : 'info';
    if ((level !== 'warn' && !this.everyAnswer) || !this.server.isLevelEnabled(level)) return;
    const line: AccessFields = {
      reqId: done.id,
      method: state.method,
      path: safePath(state.url),
      status,
      outcome: state.outcome,
      ms: Math.round(done.ms * 100) / 100,
    };
    const bytes = state.bytes ?? done.bytes;
    if (bytes !== undefined) line.bytes = bytes;
    const staleAge = state.staleAgeSeconds ?? done.staleAgeSeconds;
    if (staleAge !== undefined) line.staleAgeSeconds = staleAge;
    if (state.cause !== undefined) line.cause = state.cause;
    const authorization = done.authorization;
    const hashedToken = this.hashedTokens.of(typeof authorization === 'string' ? authorization : undefined);
    if (hashedToken !== undefined) line.hashed_token = hashedToken;
    this.writeLine(level, line, 'request');
  }

  /** The requests not answered yet (oldest first). */
  pending(): InFlightRequest[] {
    const now = performance.now();
    return [...this.inFlight].map((state) => ({ method: state.method, path: safePath(state.url), ms: Math.round(now - state.since), outcome: state.outcome }));
  }
}

/** The request path for logs, with token-like query parameters masked. */
export function safePath(url: string | undefined): string {
  if (url === undefined) return '';
  if (!url.includes('?')) return url.length > 512 ? url.slice(0, 512) : url;
  return url.replace(/([?&](?:access_token|token|client_secret|code|state)=)[^&]*/gi, '$1[redacted]').slice(0, 512);
}
