/**
 * The standard `Cache-Status` header (RFC 9211) of an answer, derived from its outcome (DESIGN §4),
 * e.g. `github-mirror; fwd=stale; fwd-status=304` for ONLINE_HIT, `github-mirror; hit; ttl=1` for
 * FRESH_HIT, `collapsed` when the answer came from a coalesced call; `detail=shared` / `detail=guess`
 * on an ONLINE_HIT whose body GitHub confirmed for a credential that had no entry of its own.
 */
import type { Outcome } from '../../domain/model.js';

export interface CacheStatusFacts {
  outcome: Outcome;
  upstreamStatus?: number;
  ttlSeconds?: number;
  collapsed: boolean;
  fromCache: boolean;
  /** Cross-credential revalidation: the body was one stored for another credential, or the empty-list guess. */
  sharedBody?: 'shared' | 'guess';
}

/** The value of a revalidated hit (a 304 from GitHub, not collapsed, the credential's own body): most answers. */
const REVALIDATED_HIT = 'github-mirror; fwd=stale; fwd-status=304';
/** FRESH_HIT values by ttl, made once each (a freshness window has a few dozen distinct ttls). */
const freshValues = new Map<number, string>();

export function cacheStatusValue(facts: CacheStatusFacts): string {
  // the two answers of nearly every request, without assembling the parts each time
  if (!facts.collapsed) {
    if (facts.outcome === 'ONLINE_HIT' && (facts.upstreamStatus ?? 304) === 304 && facts.sharedBody === undefined) return REVALIDATED_HIT;
    if (facts.outcome === 'FRESH_HIT') {
      const ttl = facts.ttlSeconds ?? 0;
      let value = freshValues.get(ttl);
      if (value === undefined) {
        value = assemble(facts);
        if (freshValues.size >= 1024) freshValues.clear();
        freshValues.set(ttl, value);
      }
      return value;
    }
  }
  return assemble(facts);
}

function assemble(facts: CacheStatusFacts): string {
  const parts = ['github-mirror'];
  const { outcome, upstreamStatus } = facts;
  if (outcome === 'FRESH_HIT') {
    parts.push('hit', `ttl=${facts.ttlSeconds ?? 0}`);
  } else if (outcome === 'OFFLINE_HIT' || outcome === 'OFFLINE_MISS') {
    parts.push(outcome === 'OFFLINE_HIT' ? 'hit' : 'fwd=miss', 'detail=upstream-offline');
  } else if (outcome === 'ONLINE_HIT') {
    parts.push('fwd=stale', `fwd-status=${upstreamStatus ?? 304}`);
    if (facts.sharedBody !== undefined) parts.push(`detail=${facts.sharedBody}`);
  } else if (outcome === 'ONLINE_MISS') {
    parts.push('fwd=miss');
    if (upstreamStatus !== undefined) parts.push(`fwd-status=${upstreamStatus}`);
  } else {
    parts.push(facts.fromCache ? 'fwd=stale' : 'fwd=miss');
    if (upstreamStatus !== undefined) parts.push(`fwd-status=${upstreamStatus}`);
    parts.push(`detail=${outcome.replace(/_(HIT|MISS)$/, '').toLowerCase().replace(/_/g, '-')}`);
  }
  if (facts.collapsed) parts.push('collapsed');
  return parts.join('; ');
}
