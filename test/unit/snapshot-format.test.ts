/**
 * The snapshot stream format: round trip, and every way a stream can be wrong is refused with its
 * reason (corrupt, truncated, version, foreign) at the first bad byte, never garbage entries.
 */
import test from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { encodeSnapshot, SnapshotDecoder, MAGIC, FORMAT_VERSION } from '../../src/adapters/snapshot/snapshot-format.js';
import { SnapshotRejectedError, SnapshotRejection } from '../../src/domain/ports/snapshot-store.port.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';

const HEADER = { id: '20260101T000000000Z-00000000', takenAt: 1_700_000_000_000, backend: 'memory', entryFormat: 'mirror-entry-v1', writer: 'test' };

function makeEntries(count: number, size = 300): DumpedEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `partition${i % 7}:${i.toString(16).padStart(40, '0')}`,
    payload: Buffer.from(JSON.stringify({ i, text: 'x'.repeat(size), n: i * 31 })),
    ttlMs: 1000 + i,
  }));
}

async function* inBatches(entries: DumpedEntry[], size = 50): AsyncGenerator<DumpedEntry[]> {
  for (let i = 0; i < entries.length; i += size) {
    await Promise.resolve();
    yield entries.slice(i, i + size);
  }
}

async function encode(entries: DumpedEntry[], blockBytes = 4096): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of encodeSnapshot(HEADER, inBatches(entries), { blockBytes })) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* chunked(bytes: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

async function decodeAll(bytes: Buffer): Promise<{ entries: DumpedEntry[]; decoder: SnapshotDecoder }> {
  const decoder = new SnapshotDecoder(chunked(bytes));
  const entries: DumpedEntry[] = [];
  for await (const batch of decoder.batches()) entries.push(...batch);
  return { entries, decoder };
}

/** Decodes and returns the entries yielded before the error, and the error. */
async function decodeUntilError(bytes: Buffer): Promise<{ yielded: number; error: unknown }> {
  const decoder = new SnapshotDecoder(chunked(bytes));
  let yielded = 0;
  try {
    for await (const batch of decoder.batches()) yielded += batch.length;
  } catch (error) {
    return { yielded, error };
  }
  return { yielded, error: undefined };
}

const same = (a: DumpedEntry, b: DumpedEntry): boolean => a.key === b.key && a.ttlMs === b.ttlMs && Buffer.compare(Buffer.from(a.payload), Buffer.from(b.payload)) === 0;

test('round trip: every entry comes back byte for byte, header and trailer agree', async (t) => {
  const entries = makeEntries(1000);
  const bytes = await encode(entries);
  const { entries: back, decoder } = await decodeAll(bytes);
  t.is(back.length, entries.length);
  t.true(back.every((e, i) => same(e, entries[i]!)));
  const header = await decoder.header();
  t.like(header, { ...HEADER, formatVersion: FORMAT_VERSION, compression: 'deflate-raw-adaptive' });
  t.is(decoder.trailer?.entries, 1000);
  t.true((decoder.trailer?.blocks ?? 0) > 10, 'many blocks at 4 KiB');
  t.true(bytes.length < entries.reduce((n, e) => n + e.payload.byteLength, 0) / 3, 'compressed');
  t.regex(decoder.sha256, /^[0-9a-f]{64}$/);
});

test('an empty snapshot and an entry larger than a block round-trip', async (t) => {
  t.deepEqual((await decodeAll(await encode([]))).entries, []);
  const big = [{ key: 'k', payload: Buffer.alloc(100_000, 7), ttlMs: 5 }];
  const back = (await decodeAll(await encode(big, 1024))).entries;
  t.true(same(back[0]!, big[0]!));
});

test('property: any entries round-trip, whatever the chunking', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ key: fc.string({ maxLength: 60 }), payload: fc.uint8Array({ maxLength: 600 }), ttlMs: fc.integer({ min: 1, max: 2 ** 40 }) }), { maxLength: 60 }),
      fc.integer({ min: 1, max: 5000 }),
      async (entries, chunk) => {
        const bytes = await encode(entries, 512);
        const decoder = new SnapshotDecoder(chunked(bytes, chunk));
        const back: DumpedEntry[] = [];
        for await (const batch of decoder.batches()) back.push(...batch);
        return back.length === entries.length && back.every((e, i) => same(e, entries[i]!));
      },
    ),
    { numRuns: 60 },
  );
  t.pass();
});

function reasonOf(error: unknown): string | undefined {
  return error instanceof SnapshotRejectedError ? error.reason : undefined;
}

test('truncated anywhere: refused as truncated, never a partial success', async (t) => {
  const bytes = await encode(makeEntries(200));
  for (const cut of [0, 5, 9, 30, Math.floor(bytes.length / 3), Math.floor(bytes.length / 2), bytes.length - 33, bytes.length - 1]) {
    const { error } = await decodeUntilError(bytes.subarray(0, cut));
    t.is(reasonOf(error), SnapshotRejection.TRUNCATED, `cut at ${cut}`);
  }
});

test('one flipped byte anywhere is caught (checksums), and only verified blocks were yielded before', async (t) => {
  const entries = makeEntries(300);
  const bytes = await encode(entries);
  const positions = new Set<number>();
  for (let p = 10; p < bytes.length; p += Math.max(1, Math.floor(bytes.length / 97))) positions.add(p);
  positions.add(bytes.length - 1);
  for (const position of positions) {
    const broken = Buffer.from(bytes);
    broken[position] = broken[position]! ^ 0x20;
    const decoder = new SnapshotDecoder(chunked(broken));
    const seen: DumpedEntry[] = [];
    let error: unknown;
    try {
      for await (const batch of decoder.batches()) seen.push(...batch);
    } catch (e) {
      error = e;
    }
    t.true(error instanceof SnapshotRejectedError, `flip at ${position} refused`);
    t.true([SnapshotRejection.CORRUPT, SnapshotRejection.TRUNCATED].includes(reasonOf(error) as never), `flip at ${position}: ${reasonOf(error)}`);
    t.true(seen.every((e, i) => same(e, entries[i]!)), `flip at ${position}: what was yielded is exact`);
  }
});

test('another format version is refused as version, another magic as foreign, bytes after the end as corrupt', async (t) => {
  const bytes = await encode(makeEntries(10));
  const v2 = Buffer.from(bytes);
  v2.writeUInt16BE(2, MAGIC.length);
  const version = await decodeUntilError(v2);
  t.is(reasonOf(version.error), SnapshotRejection.VERSION);
  t.regex((version.error as Error).message, /version 2 is not supported/);
  t.is(version.yielded, 0);

  const gzip = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), bytes]);
  t.is(reasonOf((await decodeUntilError(gzip)).error), SnapshotRejection.FOREIGN);

  const trailing = Buffer.concat([bytes, Buffer.from('x')]);
  t.is(reasonOf((await decodeUntilError(trailing)).error), SnapshotRejection.CORRUPT);
});

test('incompressible blocks are stored as they are, compressible ones deflated, both read back', async (t) => {
  const random = Array.from({ length: 200 }, (_, i) => ({ key: `r${i}`, payload: randomBytes(2000), ttlMs: 1 }));
  const text = makeEntries(1000, 2000);
  const mixed = [...random, ...text];
  const bytes = await encode(mixed, 16 * 1024);
  const payload = mixed.reduce((n, e) => n + e.payload.byteLength, 0);
  const randomBytesTotal = random.reduce((n, e) => n + e.payload.byteLength, 0);
  t.true(bytes.length > randomBytesTotal, 'random data is not shrunk');
  t.true(bytes.length < payload * 0.75, 'the text is');
  const back = (await decodeAll(bytes)).entries;
  t.true(back.every((e, i) => same(e, mixed[i]!)));
  t.true((await decodeAll(Buffer.concat(await collect(encodeSnapshot(HEADER, inBatches(text), { level: 0 }))))).entries.every((e, i) => same(e, text[i]!)), 'level 0: all stored');
});

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

test('a forged length is refused without allocating it', async (t) => {
  const bytes = await encode(makeEntries(10));
  const forged = Buffer.from(bytes);
  forged.writeUInt32BE(0xfffffff0, MAGIC.length + 2); // header length
  t.is(reasonOf((await decodeUntilError(forged)).error), SnapshotRejection.CORRUPT);
});

test('the encoder pulls lazily: it reads a batch only when more output is wanted', async (t) => {
  let pulled = 0;
  async function* slow(): AsyncGenerator<DumpedEntry[]> {
    for (let i = 0; i < 100; i++) {
      await Promise.resolve();
      pulled += 1;
      yield makeEntries(20, 2000);
    }
  }
  const iterator = encodeSnapshot(HEADER, slow(), { blockBytes: 16 * 1024 })[Symbol.asyncIterator]();
  await iterator.next();
  await iterator.next();
  t.true(pulled < 10, `pulled ${pulled} batches for two chunks`);
  await iterator.return?.(undefined as never);
});
