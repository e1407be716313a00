/**
 * Domain errors carry a stable `code` and no HTTP status; only the HTTP adapter maps codes to statuses.
 */
export const ErrorCode = {
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UPSTREAM_UNREACHABLE: 'UPSTREAM_UNREACHABLE',
  UPSTREAM_OFFLINE: 'UPSTREAM_OFFLINE',
  UPSTREAM_BODY_TOO_LARGE: 'UPSTREAM_BODY_TOO_LARGE',
  REQUEST_BODY_TOO_LARGE: 'REQUEST_BODY_TOO_LARGE',
  /** The client's request body broke off (client gone, or too slow for server.requestTimeoutMs): not an upstream failure. */
  REQUEST_BODY_INCOMPLETE: 'REQUEST_BODY_INCOMPLETE',
  BAD_REQUEST_TARGET: 'BAD_REQUEST_TARGET',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  BAD_HEADER: 'BAD_HEADER',
  NOT_FOUND: 'NOT_FOUND',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN_USER: 'FORBIDDEN_USER',
  /** The allowlist's GET /user was answered with an error; the edge relays that answer as it is. */
  USER_CHECK_FAILED: 'USER_CHECK_FAILED',
  CACHE_UNAVAILABLE: 'CACHE_UNAVAILABLE',
  /** A stored entry that does not decode or does not open with its seal key: read as a miss. */
  CACHE_ENTRY_CORRUPT: 'CACHE_ENTRY_CORRUPT',
  /** The cache breaker gave up on a call that took longer than its timeout (the call was answered from the fallback). */
  BREAKER_TIMEOUT: 'BREAKER_TIMEOUT',
  /** A snapshot that cannot be used (corrupt, truncated, foreign, another format). */
  SNAPSHOT_REJECTED: 'SNAPSHOT_REJECTED',
  /** A snapshot or restore stopped because the mirror is stopping or lost its lease. */
  SNAPSHOT_CANCELLED: 'SNAPSHOT_CANCELLED',
  /** A snapshot store object that is not there. */
  BLOB_NOT_FOUND: 'BLOB_NOT_FOUND',
  /** The client did not send its request in time (server.requestTimeoutMs / headersTimeoutMs). */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** The client's request headers are larger than the server accepts. */
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  /** A request the HTTP parser refused (malformed). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The upstream governor kept a call back longer than upstream.governor.maxWaitMs (GitHub's secondary limits). */
  GOVERNOR_WAIT_EXCEEDED: 'GOVERNOR_WAIT_EXCEEDED',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * A request the mirror could not serve, reported in a use case's result instead of thrown (an upstream
 * that timed out, is unreachable or known down, with nothing cached): the stable code and message of
 * the answer the mirror makes itself. The edge picks the status from the code and renders the JSON.
 */
export interface MirrorFailure {
  code: ErrorCode;
  message: string;
  /** What went wrong underneath (the upstream error's code and message), for the log; never sent to the client. */
  cause?: string;
  /** How long a client should wait before it tries again (the edge sends it as Retry-After). */
  retryAfterSeconds?: number;
}

/** One line for the log from an error and its causes ("Could not reach GitHub ← ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:443"). */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      parts.push(typeof code === 'string' && !current.message.includes(code) ? `${code}: ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' || typeof current === 'number' ? String(current) : `(a thrown ${typeof current})`);
      break;
    }
  }
  return parts.join(' ← ').slice(0, 500);
}

export class MirrorError extends Error {
  override readonly name = 'MirrorError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isMirrorError(error: unknown, code?: ErrorCode): error is MirrorError {
  return error instanceof MirrorError && (code === undefined || error.code === code);
}

/** GOVERNOR_WAIT_EXCEEDED, with the wait a client should allow before it tries again. */
export class GovernorWaitExceeded extends MirrorError {
  constructor(readonly retryAfterSeconds: number) {
    super(ErrorCode.GOVERNOR_WAIT_EXCEEDED, "The mirror is keeping this credential's calls under GitHub's secondary rate limits; try again later");
  }
}
