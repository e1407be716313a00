/**
 * The values the domain works with. Plain data: no framework types, no Node types.
 */

/** Header map with lower-case names, as it travels between the edge, the domain and upstream. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** What the mirror keeps for one GET: enough to answer a client again without upstream. */
export interface CachedEntry {
  /** HTTP status of the stored answer (200). */
  status: number;
  /** Headers a client needs again (lower-case names). Never x-ratelimit-*, date, x-github-request-id. */
  headers: Record<string, string>;
  /** The decoded (identity) body. */
  body: Uint8Array;
  /** Validators sent back upstream on revalidation. */
  etag?: string;
  lastModified?: string;
  /** Epoch ms when this representation was first stored. */
  storedAt: number;
  /** Epoch ms when upstream last confirmed it (200 or 304). */
  validatedAt: number;
  /** Item count when the body is a JSON array (for the full-page guard). */
  arrayLength?: number;
  /** `max-age` GitHub sent, in seconds, if any (bounds the freshness window). */
  maxAgeSeconds?: number;
}

/**
 * A body the cache holds for a resource, as it was validated for some credential, without what
 * belongs to that credential (its ETag, its scopes). Used only to ask GitHub whether another
 * credential gets the same body (cross-credential revalidation); never served without GitHub's 304.
 */
export interface StoredRepresentation {
  status: number;
  /** The resource's headers (content-type, link, vary, ...), never a credential's own (DESIGN §3). */
  headers: Record<string, string>;
  /** The decoded (identity) body. */
  body: Uint8Array;
  lastModified?: string;
  /** Epoch ms when upstream last confirmed this body to any credential. */
  validatedAt: number;
  arrayLength?: number;
  maxAgeSeconds?: number;
}

/** Outcomes of DESIGN §4: the `X-Cache` header and the `cache` metric label. */
export const Outcome = {
  ONLINE_HIT: 'ONLINE_HIT',
  ONLINE_MISS: 'ONLINE_MISS',
  FRESH_HIT: 'FRESH_HIT',
  RATE_LIMITED_HIT: 'RATE_LIMITED_HIT',
  RATE_LIMITED_MISS: 'RATE_LIMITED_MISS',
  API_ERROR_HIT: 'API_ERROR_HIT',
  API_ERROR_MISS: 'API_ERROR_MISS',
  API_TIMEOUT_HIT: 'API_TIMEOUT_HIT',
  API_TIMEOUT_MISS: 'API_TIMEOUT_MISS',
  API_CONNECTION_ERROR_HIT: 'API_CONNECTION_ERROR_HIT',
  API_CONNECTION_ERROR_MISS: 'API_CONNECTION_ERROR_MISS',
  /** GitHub answered with a body over upstream.maxBodyBytes: 502 UPSTREAM_BODY_TOO_LARGE, never a cached copy. */
  API_BODY_TOO_LARGE_MISS: 'API_BODY_TOO_LARGE_MISS',
  OFFLINE_HIT: 'OFFLINE_HIT',
  OFFLINE_MISS: 'OFFLINE_MISS',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export const ALL_OUTCOMES: readonly Outcome[] = Object.values(Outcome);

/** The parts of a request that identify a cached resource (DESIGN §3, cache key). */
export interface ResourceKeyParts {
  /** The Authorization header as sent; undefined = the anonymous partition. */
  credential: string | undefined;
  method: string;
  /** Path without the query string, exactly as received (after the /api/v3 alias is removed). */
  path: string;
  /** Raw query string without '?', byte for byte ('' when none). */
  query: string;
  accept: string;
  apiVersion: string;
}
