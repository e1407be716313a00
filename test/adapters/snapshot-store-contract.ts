/**
 * What every snapshot store must do, run against the directory store and the S3 store
 * (snapshot-file-store.test.ts, snapshot-s3-store.test.ts): commit atomically, list newest first,
 * read back exactly, refuse damaged data, leave nothing visible after a failed write.
 */
import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobSnapshotStore, DATA_SUFFIX, MANIFEST_SUFFIX } from '../../src/adapters/snapshot/blob-snapshot-store.adapter.js';
import type { BlobStore } from '../../src/adapters/snapshot/blob-store.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';
import { SnapshotRejectedError, type SnapshotMeta } from '../../src/domain/ports/snapshot-store.port.js';

export interface ContractContext {
  /** A fresh, empty blob store for one test. */
  makeBlobs: () => BlobStore;
  /** Bytes that make a multipart upload where the store has one (S3: above one part). */
  largeBytes: number;
}

export function entries(count: number, size = 200, seed = 0): DumpedEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `p${seed}:${i.toString(16).padStart(40, '0')}`,
    payload: Buffer.from(JSON.stringify({ i, seed, text: 'z'.repeat(size) })),
    ttlMs: 60_000 + i,
  }));
}

export async function* batchesOf(list: DumpedEntry[], size = 100): AsyncGenerator<DumpedEntry[]> {
  for (let i = 0; i < list.length; i += size) {
    await Promise.resolve();
    yield list.slice(i, i + size);
  }
}

export async function readAll(store: BlobSnapshotStore, id: string): Promise<DumpedEntry[]> {
  const reading = await store.open(id);
  const out: DumpedEntry[] = [];
  try {
    for await (const batch of reading.batches) out.push(...batch);
  } finally {
    await reading.close();
  }
  return out;
}

export const meta = (takenAt: number): SnapshotMeta => ({ takenAt, backend: 'memory', entryFormat: 'mirror-entry-v1' });

function sameEntries(a: DumpedEntry[], b: DumpedEntry[]): boolean {
  return a.length === b.length && a.every((e, i) => e.key === b[i]!.key && e.ttlMs === b[i]!.ttlMs && Buffer.compare(Buffer.from(e.payload), Buffer.from(b[i]!.payload)) === 0);
}

async function rewrite(blobs: BlobStore, name: string, mutate: (bytes: Buffer) => Buffer): Promise<void> {
  const bytes = await blobs.readAll(name);
  await blobs.put(name, Readable.from([mutate(Buffer.from(bytes))]));
}

export function snapshotStoreContract(test: TestFn, label: string, ctx: ContractContext): void {
  test(`${label}: save, list newest first, read back exactly, remove`, async (t) => {
    const store = new BlobSnapshotStore(ctx.makeBlobs());
    t.deepEqual(await store.list(), []);
    const first = entries(300, 200, 1);
    const second = entries(500, 200, 2);
    const a = await store.save(meta(1_000_000), batchesOf(first));
    const b = await store.save(meta(2_000_000), batchesOf(second));
    t.is(a.entries, 300);
    t.true(b.bytes > 0);
    const listed = await store.list();
    t.deepEqual(
      listed.map((s) => s.id),
      [b.id, a.id],
    );
    t.like(listed[0], { entries: 500, takenAt: 2_000_000, backend: 'memory', entryFormat: 'mirror-entry-v1', formatVersion: 1 });
    t.true(sameEntries(await readAll(store, a.id), first));
    t.true(sameEntries(await readAll(store, b.id), second));
    await store.remove(a.id);
    t.deepEqual(
      (await store.list()).map((s) => s.id),
      [b.id],
    );
    await store.remove(a.id);
    t.pass('removing twice is fine');
  });

  test(`${label}: a large snapshot (multipart where the store has it) round-trips`, async (t) => {
    const store = new BlobSnapshotStore(ctx.makeBlobs(), { encode: { level: 0 } });
    const big: DumpedEntry[] = [];
    for (let i = 0; i * 64 * 1024 < ctx.largeBytes; i++) big.push({ key: `big:${i}`, payload: randomBytes(64 * 1024), ttlMs: 1000 });
    const info = await store.save(meta(5), batchesOf(big, 8));
    t.true(info.bytes > ctx.largeBytes);
    t.true(sameEntries(await readAll(store, info.id), big));
  });

  test(`${label}: a write that fails half-way leaves no snapshot, and the previous one intact`, async (t) => {
    const blobs = ctx.makeBlobs();
    const store = new BlobSnapshotStore(blobs, { orphanAgeMs: 0, encode: { level: 0 } });
    const good = await store.save(meta(1), batchesOf(entries(50)));
    async function* failing(): AsyncGenerator<DumpedEntry[]> {
      // more than one multipart part before the failure
      for (let i = 0; i * 64 * 1024 < ctx.largeBytes + 1; i++) {
        await Promise.resolve();
        yield [{ key: `x:${i}`, payload: randomBytes(64 * 1024), ttlMs: 1 }];
      }
      throw new Error('connection to the cache lost');
    }
    await t.throwsAsync(store.save(meta(2), failing()), { message: 'connection to the cache lost' });
    t.deepEqual(
      (await store.list()).map((s) => s.id),
      [good.id],
    );
    const names = (await blobs.list()).map((b) => b.name).sort();
    t.deepEqual(names, [good.id + DATA_SUFFIX, good.id + MANIFEST_SUFFIX].sort(), 'no partial object is visible');
    t.is((await readAll(store, good.id)).length, 50);
  });

  test(`${label}: data without a manifest (a writer killed before its commit) is not listed, and swept`, async (t) => {
    const blobs = ctx.makeBlobs();
    const store = new BlobSnapshotStore(blobs, { orphanAgeMs: 0 });
    const info = await store.save(meta(1), batchesOf(entries(20)));
    await blobs.delete(info.id + MANIFEST_SUFFIX);
    t.deepEqual(await store.list(), []);
    await store.sweep();
    t.deepEqual(await blobs.list(), []);
  });

  test(`${label}: a corrupted or truncated data object is refused with a reason, an unreadable manifest is listed with its problem`, async (t) => {
    const blobs = ctx.makeBlobs();
    const store = new BlobSnapshotStore(blobs, { encode: { blockBytes: 4096 } });
    const flipped = await store.save(meta(1), batchesOf(entries(200)));
    const truncated = await store.save(meta(2), batchesOf(entries(200)));
    const badManifest = await store.save(meta(3), batchesOf(entries(10)));
    await rewrite(blobs, flipped.id + DATA_SUFFIX, (bytes) => {
      const at = Math.floor(bytes.length / 2);
      bytes[at] = bytes[at]! ^ 0xff;
      return bytes;
    });
    await rewrite(blobs, truncated.id + DATA_SUFFIX, (bytes) => bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    await rewrite(blobs, badManifest.id + MANIFEST_SUFFIX, () => Buffer.from('{"kind": "github-mirror-snap'));

    const corrupt = await t.throwsAsync(readAll(store, flipped.id), { instanceOf: SnapshotRejectedError });
    t.is((corrupt).reason, 'corrupt');
    const cut = await t.throwsAsync(readAll(store, truncated.id), { instanceOf: SnapshotRejectedError });
    t.is((cut).reason, 'truncated');
    const listed = await store.list();
    t.is(listed[0]?.id, badManifest.id);
    t.regex(listed[0]?.problem ?? '', /manifest is not valid JSON/);
    await t.throwsAsync(store.open(badManifest.id), { instanceOf: SnapshotRejectedError });
  });
}
