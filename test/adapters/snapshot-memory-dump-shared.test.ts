/**
 * Snapshots of the memory cache in the shared layout: entries, bodies and indexes all travel, each
 * body once; a restored cache serves each credential its own entry (sealed with its key) joined
 * with the shared body, keeps offering the bodies to other credentials, and refuses nothing that
 * merely arrives in another order.
 */
import test from 'ava';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { MemoryCacheDump, ENTRY_FORMAT } from '../../src/adapters/snapshot/memory-cache-dump.adapter.js';
import { parseSharedName, SHARED_ENTRY_FORMAT } from '../../src/adapters/cache/shared-layout.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import type { CachedEntry } from '../../src/domain/model.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';
import { FakeClock } from '../support/fakes.js';

const SECRET = 'snapshot-secret';
const hasher = new HmacKeyHasher(SECRET);

function entry(body: string, tag: string): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `W/"${tag}"`, 'x-oauth-scopes': tag },
    body: Buffer.from(body),
    etag: `W/"${tag}"`,
    storedAt: 1000,
    validatedAt: 2000,
  };
}

async function collect(dump: MemoryCacheDump): Promise<DumpedEntry[]> {
  const out: DumpedEntry[] = [];
  for await (const batch of dump.entries()) out.push(...batch);
  return out;
}

function filled(clock: FakeClock): MemoryCache {
  const cache = new MemoryCache({ maxBytes: 50_000_000, clock, bodyKeys: new BodyKeys(SECRET) });
  for (let r = 0; r < 5; r += 1) {
    for (let c = 0; c < 10; c += 1) {
      const credential = `token t${c}`;
      const body = JSON.stringify({ resource: r, text: 'x'.repeat(1000) });
      cache.set(`k${c}-${r}`, entry(body, `t${c}-${r}`), 100, hasher.sealKeyFor(credential), `R${r}`);
    }
  }
  return cache;
}

test('the dump holds every entry, each body once and each index once, under the shared names', async (t) => {
  const clock = new FakeClock();
  const dump = new MemoryCacheDump(filled(clock), { batchEntries: 7 });
  t.is(dump.entryFormat, SHARED_ENTRY_FORMAT);
  t.not(dump.entryFormat, ENTRY_FORMAT);
  const records = await collect(dump);
  const kinds = records.map((r) => parseSharedName(r.key)?.kind);
  t.is(kinds.filter((k) => k === 'entry').length, 50);
  t.is(kinds.filter((k) => k === 'body').length, 5);
  t.is(kinds.filter((k) => k === 'index').length, 5);
  t.is(new Set(records.map((r) => r.key)).size, records.length);
  for (const record of records) {
    t.false(Buffer.from(record.payload).includes(Buffer.from('xxxxxxxx')), 'no body in clear');
    t.false(Buffer.from(record.payload).includes(Buffer.from('token t')), 'no credential');
  }
});

test('a restored cache serves each credential its own entry with the shared body, and offers the bodies', async (t) => {
  const clock = new FakeClock();
  const records = await collect(new MemoryCacheDump(filled(clock)));
  const target = new MemoryCache({ maxBytes: 50_000_000, clock, bodyKeys: new BodyKeys(SECRET) });
  const dump = new MemoryCacheDump(target);
  // bodies and indexes first for half of it, entries first for the other: both orders restore
  const reordered = [...records.slice(0, 30).reverse(), ...records.slice(30)];
  t.is(await dump.restoreIfAbsent(reordered), records.length);
  t.is(target.bodies?.count, 5);
  const got = target.get('k3-2', hasher.sealKeyFor('token t3'), 'R2');
  t.is(got?.etag, 'W/"t3-2"');
  t.is(got?.headers['x-oauth-scopes'], 't3-2');
  t.is(JSON.parse(Buffer.from(got?.body ?? []).toString()).resource, 2);
  t.is(target.get('k4-2', hasher.sealKeyFor('token t3'), 'R2'), undefined, 'another credential’s key does not open an entry');
  const reps = await target.representations('R4', 4);
  t.is(reps.length, 1);
  t.is(reps[0]?.headers['x-oauth-scopes'], undefined);
  t.is(JSON.parse(Buffer.from(reps[0]?.body ?? []).toString()).resource, 4);
  t.is(await dump.restoreIfAbsent(records), 1, 'nothing replaced: only the entry the wrong key dropped comes back');
});

test('a restored body that does not open with the secret is dropped, and its entries are misses', async (t) => {
  const clock = new FakeClock();
  const records = await collect(new MemoryCacheDump(filled(clock)));
  const target = new MemoryCache({ maxBytes: 50_000_000, clock, bodyKeys: new BodyKeys('another-secret') });
  await new MemoryCacheDump(target).restoreIfAbsent(records);
  t.is(target.get('k3-2', hasher.sealKeyFor('token t3'), 'R2'), undefined);
  t.deepEqual(await target.representations('R2', 4), []);
  t.true((target.bodies?.unreadable ?? 0) > 0);
});
