/**
 * The Cache-Status header (RFC 9211) the edge adds to every answer: the values kept for the common
 * answers (a revalidated hit, a fresh hit per ttl) are the ones assembled for the rest.
 */
import test from 'ava';
import { cacheStatusValue, type CacheStatusFacts } from '../../src/adapters/http/cache-status.js';

const base: CacheStatusFacts = { outcome: 'ONLINE_HIT', collapsed: false, fromCache: true };

test('a revalidated hit, plain, collapsed, or on a body confirmed for another credential', (t) => {
  t.is(cacheStatusValue({ ...base, upstreamStatus: 304 }), 'github-mirror; fwd=stale; fwd-status=304');
  t.is(cacheStatusValue(base), 'github-mirror; fwd=stale; fwd-status=304');
  t.is(cacheStatusValue({ ...base, upstreamStatus: 304, collapsed: true }), 'github-mirror; fwd=stale; fwd-status=304; collapsed');
  t.is(cacheStatusValue({ ...base, upstreamStatus: 304, sharedBody: 'shared' }), 'github-mirror; fwd=stale; fwd-status=304; detail=shared');
  t.is(cacheStatusValue({ ...base, upstreamStatus: 304, sharedBody: 'guess' }), 'github-mirror; fwd=stale; fwd-status=304; detail=guess');
  t.is(cacheStatusValue({ ...base, upstreamStatus: 200 }), 'github-mirror; fwd=stale; fwd-status=200');
});

test('a fresh hit says its ttl, the same value each time for the same ttl, a new one for another', (t) => {
  const fresh = (ttlSeconds: number | undefined, collapsed = false) => cacheStatusValue({ outcome: 'FRESH_HIT', collapsed, fromCache: true, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) });
  t.is(fresh(42), 'github-mirror; hit; ttl=42');
  t.is(fresh(42), 'github-mirror; hit; ttl=42');
  t.is(fresh(7), 'github-mirror; hit; ttl=7');
  t.is(fresh(undefined), 'github-mirror; hit; ttl=0');
  t.is(fresh(42, true), 'github-mirror; hit; ttl=42; collapsed');
  // far more distinct ttls than are kept: every value still right
  for (let ttl = 0; ttl < 3000; ttl++) if (fresh(ttl) !== `github-mirror; hit; ttl=${ttl}`) t.fail(`ttl ${ttl}`);
});

test('misses, offline answers and the mirror’s own failures', (t) => {
  t.is(cacheStatusValue({ outcome: 'ONLINE_MISS', upstreamStatus: 200, collapsed: false, fromCache: false }), 'github-mirror; fwd=miss; fwd-status=200');
  t.is(cacheStatusValue({ outcome: 'OFFLINE_HIT', collapsed: false, fromCache: true }), 'github-mirror; hit; detail=upstream-offline');
  t.is(cacheStatusValue({ outcome: 'OFFLINE_MISS', collapsed: false, fromCache: false }), 'github-mirror; fwd=miss; detail=upstream-offline');
});
