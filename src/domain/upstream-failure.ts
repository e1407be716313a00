/**
 * How an upstream call that got no HTTP answer the mirror can use (it was rejected) is reported
 * (DESIGN §4): the outcome when a cached body is served instead, the outcome and the mirror's own
 * failure when nothing is, and the `upstream.called` event's result. A body over
 * upstream.maxBodyBytes is GitHub's answer, not an outage: no cached body stands in for it (the
 * resource changed into one the mirror does not hold) and it is not reported as unreachable.
 */
import type { Outcome } from './model.js';
import { ErrorCode, GovernorWaitExceeded, describeError, isMirrorError, type MirrorFailure } from './errors.js';

export interface UpstreamFailure {
  /** The outcome when a cached body is served instead; undefined = no cached body may be (the entry is outdated). */
  hit: Outcome | undefined;
  miss: Outcome;
  /** What the mirror answers when nothing cached can be served. */
  error: MirrorFailure;
  /** The `upstream.called` event's result. */
  result: 'timeout' | 'connection_error' | 'offline' | 'refused' | 'body_too_large';
  /** GitHub did answer (the call counted against the quota). */
  answered: boolean;
}

/** Maps an UpstreamPort rejection to its outcomes; the failure carries the error's description as its cause (for the log). */
export function classifyUpstreamFailure(error: unknown): UpstreamFailure {
  const failure = classify(error);
  failure.error.cause = describeError(error);
  return failure;
}

/** Governor refusal (rate limited), timeout, breaker open (offline), body too large, anything else unreachable. */
function classify(error: unknown): UpstreamFailure {
  if (isMirrorError(error, ErrorCode.GOVERNOR_WAIT_EXCEEDED)) {
    // the upstream governor kept the call back too long (secondary limits): a rate limit of the mirror's own
    const retryAfterSeconds = error instanceof GovernorWaitExceeded ? error.retryAfterSeconds : 1;
    return {
      hit: 'RATE_LIMITED_HIT',
      miss: 'RATE_LIMITED_MISS',
      error: { code: ErrorCode.GOVERNOR_WAIT_EXCEEDED, message: error.message, retryAfterSeconds },
      result: 'refused',
      answered: false,
    };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_TIMEOUT)) {
    return {
      hit: 'API_TIMEOUT_HIT',
      miss: 'API_TIMEOUT_MISS',
      error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' },
      result: 'timeout',
      answered: false,
    };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_BODY_TOO_LARGE)) {
    return {
      hit: undefined,
      miss: 'API_BODY_TOO_LARGE_MISS',
      error: { code: ErrorCode.UPSTREAM_BODY_TOO_LARGE, message: `GitHub's answer is larger than the mirror accepts (${error.message})` },
      result: 'body_too_large',
      answered: true,
    };
  }
  if (isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE)) {
    return {
      hit: 'OFFLINE_HIT',
      miss: 'OFFLINE_MISS',
      error: { code: ErrorCode.UPSTREAM_OFFLINE, message: 'GitHub is unreachable; the mirror is answering offline' },
      result: 'offline',
      answered: false,
    };
  }
  return {
    hit: 'API_CONNECTION_ERROR_HIT',
    miss: 'API_CONNECTION_ERROR_MISS',
    error: { code: ErrorCode.UPSTREAM_UNREACHABLE, message: 'Could not reach GitHub' },
    result: 'connection_error',
    answered: false,
  };
}
