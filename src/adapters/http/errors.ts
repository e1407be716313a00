/**
 * The HTTP meaning of the domain's error codes: the one place where a code becomes a status, and the
 * one JSON shape of every answer the mirror makes itself (DESIGN §4).
 */
import { ErrorCode } from '../../domain/errors.js';

/** The one place where error codes become HTTP statuses. */
export const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.BAD_REQUEST_TARGET]: 400,
  [ErrorCode.BAD_HEADER]: 400,
  /** A request node's HTTP parser refused. */
  [ErrorCode.BAD_REQUEST]: 400,
  [ErrorCode.REQUEST_TIMEOUT]: 408,
  [ErrorCode.HEADERS_TOO_LARGE]: 431,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN_USER]: 403,
  /** Fallback only: the HTTP adapter relays the /user answer itself (its own status). */
  [ErrorCode.USER_CHECK_FAILED]: 502,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.REQUEST_BODY_TOO_LARGE]: 413,
  [ErrorCode.REQUEST_BODY_INCOMPLETE]: 400,
  [ErrorCode.UPSTREAM_UNREACHABLE]: 502,
  [ErrorCode.UPSTREAM_BODY_TOO_LARGE]: 502,
  [ErrorCode.GOVERNOR_WAIT_EXCEEDED]: 429,
  [ErrorCode.SHUTTING_DOWN]: 503,
  [ErrorCode.CACHE_UNAVAILABLE]: 503,
  [ErrorCode.UPSTREAM_TIMEOUT]: 504,
  [ErrorCode.UPSTREAM_OFFLINE]: 504,
  [ErrorCode.INTERNAL]: 500,
};

export function statusForCode(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** The JSON the mirror answers with when it refuses or fails a request itself. */
export function errorJson(message: string, code: string): string {
  return JSON.stringify({ message, code });
}
