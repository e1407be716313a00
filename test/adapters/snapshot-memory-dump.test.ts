/**
 * The memory cache as a snapshot source and target: every live entry once with its TTL, lookups during
 * a snapshot neither duplicate entries nor keep it going, restore never replaces a present entry.
 */
import test from 'ava';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump, ENTRY_FORMAT } from '../../src/adapters/snapshot/memory-cache-dump.adapter.js';
import { decodeEntry } from '../../src/adapters/cache/entry-codec.js';
import type { CachedEntry } from '../../src/domain/model.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';
import { TakeSnapshot } from '../../src/domain/use-cases/take-snapshot.js';
import { RestoreSnapshot } from '../../src/domain/use-cases/restore-snapshot.js';
import { EventName, type SnapshotEvent } from '../../src/domain/events/events.js';
import { FakeStore } from '../unit/snapshot-fakes.js';

function entry(n: number): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `"e${n}"` },
    body: Buffer.from(JSON.stringify({ n, text: 'b'.repeat(500) })),
    etag: `"e${n}"`,
    storedAt: 1000 + n,
    validatedAt: 2000 + n,
  };
}

async function collect(dump: MemoryCacheDump, during?: () => void): Promise<DumpedEntry[]> {
  const out: DumpedEntry[] = [];
  for await (const batch of dump.entries()) {
    out.push(...batch);
    during?.();
  }
  return out;
}

test('every live entry once, with its remaining TTL and a payload that decodes to the entry', async (t) => {
  const clock = new FakeClock();
  const cache = new MemoryCache({ maxBytes: 50_000_000, clock });
  for (let i = 0; i < 1000; i++) cache.set(`k${i}`, entry(i), i % 10 === 0 ? 1 : 100);
  clock.advance(2000);
  const dump = new MemoryCacheDump(cache, { batchEntries: 64 });
  t.is(dump.entryFormat, ENTRY_FORMAT);
  const out = await collect(dump);
  t.is(out.length, 900, 'the 100 expired ones are left out');
  t.is(new Set(out.map((e) => e.key)).size, 900);
  t.is(out[0]?.ttlMs, 98_000);
  const decoded = decodeEntry(out[5]!.payload);
  t.deepEqual({ ...decoded, body: Buffer.from(decoded.body).toString() }, { ...entry(6), body: Buffer.from(entry(6).body).toString() });
});

test('lookups during a snapshot reorder the LRU but do not duplicate entries or prolong the walk', async (t) => {
  const cache = new MemoryCache({ maxBytes: 50_000_000 });
  for (let i = 0; i < 500; i++) cache.set(`k${i}`, entry(i), 100);
  const dump = new MemoryCacheDump(cache, { batchEntries: 10 });
  let round = 0;
  const out = await collect(dump, () => {
    // hit every key, so each moves to the most recent end while the walk is under way
    for (let i = 0; i < 500; i++) cache.get(`k${(i + round) % 500}`);
    round += 1;
  });
  t.is(out.length, 500);
  t.is(new Set(out.map((e) => e.key)).size, 500);
});

test('restore writes absent entries only, skips what does not decode, and leaves present ones alone', async (t) => {
  const clock = new FakeClock();
  const cache = new MemoryCache({ maxBytes: 50_000_000, clock });
  const source = new MemoryCache({ maxBytes: 50_000_000, clock });
  for (let i = 0; i < 20; i++) source.set(`k${i}`, entry(i), 100);
  const snapshot = await collect(new MemoryCacheDump(source));
  cache.set('k3', { ...entry(3), body: Buffer.from('newer') }, 100);
  const dump = new MemoryCacheDump(cache);
  const written = await dump.restoreIfAbsent([...snapshot, { key: 'garbage', payload: Buffer.from('not an entry'), ttlMs: 1000 }]);
  t.is(written, 19);
  t.is(dump.unreadable, 1);
  t.is(Buffer.from(cache.get('k3')!.body).toString(), 'newer');
  t.is(cache.peek('k7')?.ttlMs, 100_000);
  t.false(await dump.isEmpty());
  t.true(await new MemoryCacheDump(new MemoryCache({ maxBytes: 1000 })).isEmpty());
});

test('a restore into a memory cache smaller than the snapshot reports what it kept, and what it had to drop for room', async (t) => {
  const clock = new FakeClock();
  const big = new MemoryCache({ maxBytes: 50_000_000, clock });
  for (let i = 0; i < 1000; i++) big.set(`k${i}`, entry(i), 600);
  const store = new FakeStore();
  const bus = new RecordingBus();
  t.is((await new TakeSnapshot(new MemoryCacheDump(big), store, bus, clock, { retain: 1 }).execute()).outcome, 'ok');

  const small = new MemoryCache({ maxBytes: 200_000, clock });
  const result = await new RestoreSnapshot(new MemoryCacheDump(small), store, bus, clock).execute();
  t.is(result.outcome, 'ok');
  if (result.outcome !== 'ok') return;
  t.true(small.size > 0 && small.size < 1000, `kept ${small.size}`);
  t.is(result.restored, small.size, 'restored counts what the cache kept');
  t.is(result.evicted, 1000 - small.size);
  t.is(result.entries, 1000);
  const completed = bus.named(EventName.restoreCompleted).at(-1) as SnapshotEvent;
  t.like(completed, { outcome: 'ok', restored: small.size, evicted: 1000 - small.size });
});
