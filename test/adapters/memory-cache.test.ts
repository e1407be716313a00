import test from 'ava';
import { MemoryCache, entrySize } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import type { CachedEntry } from '../../src/domain/model.js';
import { FakeClock } from '../support/fakes.js';

function entry(bytes: number, tag = 'x'): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `"${tag}"`, link: '<https://api.github.com/x?page=2>; rel="next"' },
    body: new Uint8Array(bytes).fill(65),
    etag: `"${tag}"`,
    storedAt: 0,
    validatedAt: 0,
  };
}

test('stays within maxBytes (±10%) after 10x its size went through it', (t) => {
  const maxBytes = 1024 * 1024;
  const cache = new MemoryCache({ maxBytes });
  let written = 0;
  let i = 0;
  while (written < maxBytes * 10) {
    const e = entry(500 + ((i * 7919) % 8000), String(i));
    cache.set(`key-${i}`, e, 3600);
    written += entrySize(`key-${i}`, e);
    i++;
  }
  t.true(cache.usedBytes <= maxBytes * 1.1, `used ${cache.usedBytes}`);
  t.true(cache.usedBytes >= maxBytes * 0.9, `used ${cache.usedBytes}`);
  // The accounting matches the entries actually held.
  let recount = 0;
  for (const { key, entry: e } of cache.entries()) recount += entrySize(key, e);
  t.is(recount, cache.usedBytes);
});

test('evicts least recently used first; a lookup refreshes recency', async (t) => {
  const one = entrySize('a', entry(1000));
  const cache = new MemoryCache({ maxBytes: one * 3 });
  await cache.store('a', entry(1000), 60);
  await cache.store('b', entry(1000), 60);
  await cache.store('c', entry(1000), 60);
  t.truthy(await cache.lookup('a'));
  await cache.store('d', entry(1000), 60);
  t.truthy(await cache.lookup('a'));
  t.is(await cache.lookup('b'), undefined);
  t.truthy(await cache.lookup('c'));
  t.truthy(await cache.lookup('d'));
});

test('entries expire after their TTL', async (t) => {
  const clock = new FakeClock();
  const cache = new MemoryCache({ maxBytes: 1_000_000, clock });
  await cache.store('k', entry(10), 5);
  clock.advance(4_999);
  t.truthy(await cache.lookup('k'));
  clock.advance(2);
  t.is(await cache.lookup('k'), undefined);
  t.deepEqual(await cache.stats(), { entries: 0, bytes: 0 });
});

test('an entry larger than the whole cache is not kept; forget removes', async (t) => {
  const cache = new MemoryCache({ maxBytes: 1000 });
  await cache.store('big', entry(5000), 60);
  t.is(await cache.lookup('big'), undefined);
  await cache.store('small', entry(10), 60);
  await cache.forget('small');
  t.is(cache.size, 0);
  t.throws(() => new MemoryCache({ maxBytes: 0 }));
});
