import type { Outcome } from '../model.js';

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
