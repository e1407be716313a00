import type { Outcome } from '../model.js';
import { ErrorCode, GovernorWaitExceeded, isMirrorError } from '../errors.js';

/** What a use case hands back to the edge for one client request. */
export interface Resolution {
  outcome: Outcome;
  status: number;
  /** Headers to send (lower-case), without X-Cache / Cache-Status (the edge adds those). */
  headers: Record<string, string>;
  /** Identity body (empty for 304). */
  body: Uint8Array;
  /** This caller shared another caller's upstream call. */
  collapsed: boolean;
  /** Seconds since the served entry was last validated; set on stale answers. */
  staleAgeSeconds?: number;
  /** Status upstream answered, when it was asked. */
  upstreamStatus?: number;
  /** Remaining freshness in seconds (FRESH_HIT). */
  ttlSeconds?: number;
  /** The answer carries a cached entry's body (the body is the entry's, URLs in it still upstream's). */
  fromCache: boolean;
}

const encoder = new TextEncoder();

/** The JSON error body the mirror makes itself: {"message": "...", "code": "..."}. */
export function errorBody(message: string, code: string): Uint8Array {
  return encoder.encode(JSON.stringify({ message, code }));
}

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The RFC 9211 Cache-Status value for a resolution. */
export function cacheStatusValue(resolution: Pick<Resolution, 'outcome' | 'upstreamStatus' | 'ttlSeconds' | 'collapsed' | 'fromCache'>): string {
  const parts = ['github-mirror'];
  const { outcome, upstreamStatus } = resolution;
  if (outcome === 'FRESH_HIT') {
    parts.push('hit', `ttl=${resolution.ttlSeconds ?? 0}`);
  } else if (outcome === 'OFFLINE_HIT' || outcome === 'OFFLINE_MISS') {
    parts.push(outcome === 'OFFLINE_HIT' ? 'hit' : 'fwd=miss', 'detail=upstream-offline');
  } else if (outcome === 'ONLINE_HIT') {
    parts.push('fwd=stale', `fwd-status=${upstreamStatus ?? 304}`);
  } else if (outcome === 'ONLINE_MISS') {
    parts.push('fwd=miss');
    if (upstreamStatus !== undefined) parts.push(`fwd-status=${upstreamStatus}`);
  } else {
    parts.push(resolution.fromCache ? 'fwd=stale' : 'fwd=miss');
    if (upstreamStatus !== undefined) parts.push(`fwd-status=${upstreamStatus}`);
    parts.push(`detail=${outcome.replace(/_(HIT|MISS)$/, '').toLowerCase().replace(/_/g, '-')}`);
  }
  if (resolution.collapsed) parts.push('collapsed');
  return parts.join('; ');
}

/** How an upstream failure (a rejected call, no HTTP answer) is reported: outcomes, status, JSON error. */
export interface UpstreamFailure {
  hit: Outcome;
  miss: Outcome;
  /** Status of the mirror's own answer when nothing cached can be served. */
  status: number;
  code: string;
  message: string;
  /** The `upstream.called` event's result. */
  result: 'timeout' | 'connection_error' | 'offline' | 'refused';
  /** Headers of the mirror's own answer, besides its content type (Retry-After of a governor refusal). */
  headers?: Record<string, string>;
}

/** Maps an UpstreamPort rejection to DESIGN §4's outcomes: timeout, breaker open (offline), anything else unreachable. */
export function classifyUpstreamFailure(error: unknown): UpstreamFailure {
  if (isMirrorError(error, ErrorCode.GOVERNOR_WAIT_EXCEEDED)) {
    // the upstream governor kept the call back too long (secondary limits): a rate limit of the mirror's own
    const seconds = error instanceof GovernorWaitExceeded ? error.retryAfterSeconds : 1;
    return {
      hit: 'RATE_LIMITED_HIT',
      miss: 'RATE_LIMITED_MISS',
      status: 429,
      code: ErrorCode.GOVERNOR_WAIT_EXCEEDED,
      message: error.message,
      result: 'refused',
      headers: { 'retry-after': String(seconds) },
    };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_TIMEOUT)) {
    return { hit: 'API_TIMEOUT_HIT', miss: 'API_TIMEOUT_MISS', status: 504, code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time', result: 'timeout' };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE)) {
    return {
      hit: 'OFFLINE_HIT',
      miss: 'OFFLINE_MISS',
      status: 504,
      code: ErrorCode.UPSTREAM_OFFLINE,
      message: 'GitHub is unreachable; the mirror is answering offline',
      result: 'offline',
    };
  }
  return {
    hit: 'API_CONNECTION_ERROR_HIT',
    miss: 'API_CONNECTION_ERROR_MISS',
    status: 502,
    code: ErrorCode.UPSTREAM_UNREACHABLE,
    message: 'Could not reach GitHub',
    result: 'connection_error',
  };
}
