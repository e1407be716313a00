/**
 * Domain errors carry a stable `code` and no HTTP status; only the HTTP adapter maps codes to statuses.
 */
export const ErrorCode = {
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UPSTREAM_UNREACHABLE: 'UPSTREAM_UNREACHABLE',
  UPSTREAM_OFFLINE: 'UPSTREAM_OFFLINE',
  UPSTREAM_BODY_TOO_LARGE: 'UPSTREAM_BODY_TOO_LARGE',
  REQUEST_BODY_TOO_LARGE: 'REQUEST_BODY_TOO_LARGE',
  BAD_REQUEST_TARGET: 'BAD_REQUEST_TARGET',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  BAD_HEADER: 'BAD_HEADER',
  NOT_FOUND: 'NOT_FOUND',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN_USER: 'FORBIDDEN_USER',
  CACHE_UNAVAILABLE: 'CACHE_UNAVAILABLE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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
