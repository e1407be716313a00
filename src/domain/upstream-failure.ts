/**
 * How an upstream call that got no HTTP answer (it was rejected) is reported (DESIGN §4): the outcome
 * when a cached body is served instead, the outcome and the mirror's own failure when nothing is, and
 * the `upstream.called` event's result.
 */
import type { Outcome } from './model.js';
import { ErrorCode, GovernorWaitExceeded, isMirrorError, type MirrorFailure } from './errors.js';

export interface UpstreamFailure {
  hit: Outcome;
  miss: Outcome;
  /** What the mirror answers when nothing cached can be served. */
  error: MirrorFailure;
  /** The `upstream.called` event's result. */
  result: 'timeout' | 'connection_error' | 'offline' | 'refused';
}

/** Maps an UpstreamPort rejection to its outcomes: governor refusal (rate limited), timeout, breaker open (offline), anything else unreachable. */
export function classifyUpstreamFailure(error: unknown): UpstreamFailure {
  if (isMirrorError(error, ErrorCode.GOVERNOR_WAIT_EXCEEDED)) {
    // the upstream governor kept the call back too long (secondary limits): a rate limit of the mirror's own
    const retryAfterSeconds = error instanceof GovernorWaitExceeded ? error.retryAfterSeconds : 1;
    return { hit: 'RATE_LIMITED_HIT', miss: 'RATE_LIMITED_MISS', error: { code: ErrorCode.GOVERNOR_WAIT_EXCEEDED, message: error.message, retryAfterSeconds }, result: 'refused' };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_TIMEOUT)) {
    return { hit: 'API_TIMEOUT_HIT', miss: 'API_TIMEOUT_MISS', error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' }, result: 'timeout' };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE)) {
    return {
      hit: 'OFFLINE_HIT',
      miss: 'OFFLINE_MISS',
      error: { code: ErrorCode.UPSTREAM_OFFLINE, message: 'GitHub is unreachable; the mirror is answering offline' },
      result: 'offline',
    };
  }
  return {
    hit: 'API_CONNECTION_ERROR_HIT',
    miss: 'API_CONNECTION_ERROR_MISS',
    error: { code: ErrorCode.UPSTREAM_UNREACHABLE, message: 'Could not reach GitHub' },
    result: 'connection_error',
  };
}
