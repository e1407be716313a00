/**
 * What the GET flow hands the edge for one client request: an answer to relay (a cached entry's or
 * upstream's status, headers and body), or a failure the mirror answers itself (a stable code and a
 * message, no status: the HTTP adapter maps the code and renders the one JSON error shape).
 */
import type { Outcome } from './model.js';
import type { MirrorFailure } from './errors.js';

interface ResolutionCommon {
  outcome: Outcome;
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
  /**
   * ONLINE_HIT of a credential with no entry of its own (cross-credential revalidation): GitHub's 304
   * confirmed a body stored for another credential ("shared") or the empty list ("guess").
   */
  sharedBody?: 'shared' | 'guess';
  /** Why upstream failed when a cached body was served instead (for the log; never sent). */
  upstreamCause?: string;
}

/** An answer to relay: the status GitHub gave (or the entry kept), its headers and body. */
export interface ServedResolution extends ResolutionCommon {
  status: number;
  /**
   * Headers to send (lower-case), without X-Cache / Cache-Status (the edge adds those). Read-only: a
   * cached answer's may be the stored entry's own object (no copy per answer).
   */
  headers: Readonly<Record<string, string>>;
  /** Identity body (empty for 304). */
  body: Uint8Array;
  error?: undefined;
}

/** Nothing to relay: upstream failed and nothing cached could be served. */
export interface FailedResolution extends ResolutionCommon {
  error: MirrorFailure;
  status?: undefined;
  headers?: undefined;
  body?: undefined;
}

export type Resolution = ServedResolution | FailedResolution;
