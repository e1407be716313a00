import test from 'ava';
import { MemoryCache, entrySize } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import type { CachedEntry } from '../../src/domain/model.js';
import { FakeClock } from '../support/fakes.js';

const keys = new BodyKeys('test-secret');

function entry(body: string, tag: string, validatedAt = 0, extra: Record<string, string> = {}): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `W/"${tag}"`, 'x-oauth-scopes': `scopes-of-${tag}`, ...extra },
    body: new TextEncoder().encode(body),
    etag: `W/"${tag}"`,
    storedAt: validatedAt,
    validatedAt,
  };
}

const big = (n: number, fill = 'a'): string => `"${fill.repeat(n)}"`;

test('entries of one resource with the same body hold it once; each keeps its own ETag and headers', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  const body = big(4000);
  for (let i = 0; i < 100; i += 1) await cache.store(`token-${i}`, entry(body, `t${i}`), 60, undefined, 'R');
  t.is(cache.bodies?.count, 1);
  t.true(cache.usedBytes < 4000 + 100 * 1000, `used ${cache.usedBytes}`);
  const seven = await cache.lookup('token-7', undefined, 'R');
  t.is(seven?.etag, 'W/"t7"');
  t.is(seven?.headers['x-oauth-scopes'], 'scopes-of-t7');
  t.is(new TextDecoder().decode(seven?.body), body);
  t.deepEqual((await cache.stats()).layout, { entries: 100, bodies: 1, estimated: false });
});

test('the same body under two resources is two bodies; a different body is another', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  await cache.store('a1', entry('[1]', 'a'), 60, undefined, 'R1');
  await cache.store('a2', entry('[1]', 'b'), 60, undefined, 'R2');
  await cache.store('a3', entry('[2]', 'c'), 60, undefined, 'R1');
  t.is(cache.bodies?.count, 3);
});

test('representations: most recently validated first, without any credential header, up to the limit', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  await cache.store('t1', entry('{"p":1}', 't1', 100, { link: '<x>; rel="next"' }), 60, undefined, 'R');
  await cache.store('t2', entry('{"p":2}', 't2', 200), 60, undefined, 'R');
  await cache.store('t3', entry('{"p":3}', 't3', 300), 60, undefined, 'R');
  const reps = await cache.representations('R', 2);
  t.deepEqual(
    reps.map((r) => new TextDecoder().decode(r.body)),
    ['{"p":3}', '{"p":2}'],
  );
  t.is(reps[0]?.validatedAt, 300);
  for (const rep of reps) {
    t.is(rep.headers['etag'], undefined);
    t.is(rep.headers['x-oauth-scopes'], undefined);
    t.is(rep.headers['content-type'], 'application/json; charset=utf-8');
  }
  // revalidating t1 brings its body to the front
  await cache.store('t1', entry('{"p":1}', 't1', 400), 60, undefined, 'R');
  const again = await cache.representations('R', 4);
  t.is(new TextDecoder().decode(again[0]?.body), '{"p":1}');
  t.is(again[0]?.headers['link'], '<x>; rel="next"');
  t.is(again.length, 3);
  t.deepEqual(await cache.representations('other', 4), []);
});

test('a body goes with the last entry pointing at it (forget, replace, expiry, eviction)', async (t) => {
  const clock = new FakeClock();
  const cache = new MemoryCache({ maxBytes: 10_000_000, clock, bodyKeys: keys });
  await cache.store('t1', entry(big(100), 'x'), 60, undefined, 'R');
  await cache.store('t2', entry(big(100), 'y'), 120, undefined, 'R');
  await cache.forget('t1', 'R');
  t.is(cache.bodies?.count, 1);
  await cache.store('t2', entry(big(100, 'b'), 'y2'), 120, undefined, 'R');
  t.is(cache.bodies?.count, 1, 'the old body went with its last entry');
  t.is((await cache.representations('R', 4)).length, 1);
  clock.advance(121_000);
  t.is(await cache.lookup('t2', undefined, 'R'), undefined);
  t.is(cache.bodies?.count, 0);
  t.deepEqual(await cache.representations('R', 4), []);
  t.is(cache.usedBytes, 0);
});

test('LRU by bytes counts a shared body once and evicts entries, then their bodies', async (t) => {
  const probe = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  await probe.store('k-0', entry(big(2000, 'z'), 'e-0'), 60, undefined, 'R0');
  const one = probe.usedBytes;
  const cache = new MemoryCache({ maxBytes: one * 10, bodyKeys: keys });
  for (let i = 0; i < 100; i += 1) await cache.store(`k-${i}`, entry(big(2000, String(i % 10)), `e-${i}`), 60, undefined, `R${i}`);
  t.true(cache.usedBytes <= one * 10);
  t.true(cache.usedBytes >= one * 8, `used ${cache.usedBytes} of ${one * 10}`);
  t.is(cache.bodies?.count, cache.size, 'one body per entry here: every resource is its own');
  t.is(await cache.lookup('k-0', undefined, 'R0'), undefined, 'oldest went first');
  t.truthy(await cache.lookup('k-99', undefined, 'R99'));
});

test('without body keys (shareAcrossCredentials off) a resource key changes nothing', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000 });
  const e = entry(big(500), 'x');
  await cache.store('t1', e, 60, undefined, 'R');
  await cache.store('t2', entry(big(500), 'y'), 60, undefined, 'R');
  t.is(cache.bodies, undefined);
  t.is(cache.usedBytes, entrySize('t1', e) * 2);
  t.deepEqual(await cache.representations('R', 4), []);
  t.is((await cache.lookup('t1', undefined, 'R'))?.etag, 'W/"x"');
});

test('an entry stored without a resource key keeps its own body even with body keys', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  const e = entry(big(500), 'x');
  await cache.store('t1', e, 60);
  t.is(cache.bodies?.count, 0);
  t.is(cache.usedBytes, entrySize('t1', e));
});

test('an entry keeps only the headers its body record does not give it, and gets them all back joined', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  const base = { link: '<https://api.github.com/x?page=2>; rel="next"', vary: 'Accept, Authorization, Cookie', 'x-oauth-scopes': 'repo' };
  await cache.store('t1', entry('[1]', 'a', 0, base), 60, undefined, 'R');
  const before = cache.usedBytes;
  const second = entry('[1]', 'b', 0, { ...base, 'x-extra': 'only t2' });
  await cache.store('t2', second, 60, undefined, 'R');
  const resourceHeaderBytes = (base.link.length + 'link'.length + base.vary.length + 'vary'.length + 'content-type'.length + (second.headers['content-type']?.length ?? 0)) * 2;
  t.is(cache.usedBytes - before, entrySize('t2', second) - second.body.byteLength - resourceHeaderBytes, 'the second entry holds its own headers only');
  const one = await cache.lookup('t1', undefined, 'R');
  const two = await cache.lookup('t2', undefined, 'R');
  t.is(one?.headers['link'], base.link);
  t.is(two?.headers['link'], base.link);
  t.is(two?.headers['x-extra'], 'only t2');
  t.is(one?.headers['x-extra'], undefined);
  t.is(two?.headers['x-oauth-scopes'], 'repo', 'a credential header equal to another’s is still its own');
  t.is(two?.headers['etag'], 'W/"b"');
  t.is(one?.body, two?.body, 'one body object for both');
});

test('a pointer joined with its body is joined once per stored entry: lookups share it until a store, forget or new body', async (t) => {
  const cache = new MemoryCache({ maxBytes: 10_000_000, bodyKeys: keys });
  await cache.store('k', entry('[1]', 'a', 1), 60, undefined, 'R');
  const first = await cache.lookup('k', undefined, 'R');
  t.is(await cache.lookup('k', undefined, 'R'), first, 'the same join, not a copy per lookup');
  await cache.store('k', entry('[1]', 'a', 2, { 'x-oauth-scopes': 'repo' }), 60, undefined, 'R');
  const restored = await cache.lookup('k', undefined, 'R');
  t.not(restored, first, 'a store makes a new entry');
  t.is(restored?.validatedAt, 2);
  t.is(restored?.headers['x-oauth-scopes'], 'repo');
  t.is(first?.headers['x-oauth-scopes'], 'scopes-of-a', 'an entry handed out is never changed');
  await cache.store('k', entry('[2]', 'b', 3), 60, undefined, 'R');
  t.is(new TextDecoder().decode((await cache.lookup('k', undefined, 'R'))?.body), '[2]', 'another body: joined again');
  await cache.forget('k');
  t.is(await cache.lookup('k', undefined, 'R'), undefined);
  // bounded: many pointers, the oldest joins go, lookups stay right
  for (let i = 0; i < 5000; i += 1) await cache.store(`p${i}`, entry('[3]', `p${i}`), 60, undefined, 'R3');
  for (let i = 0; i < 5000; i += 1) t.is((await cache.lookup(`p${i}`, undefined, 'R3'))?.etag, `W/"p${i}"`);
  t.true((cache as unknown as { joins: Map<unknown, unknown> }).joins.size <= 4096);
});
