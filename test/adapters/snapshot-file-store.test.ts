/**
 * The directory snapshot store: the store contract, plus what is particular to files (temporary
 * files of interrupted writes are hidden and swept; the directory is created on demand).
 */
import test from 'ava';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileBlobStore } from '../../src/adapters/snapshot/file-blob-store.adapter.js';
import { BlobSnapshotStore } from '../../src/adapters/snapshot/blob-snapshot-store.adapter.js';
import { batchesOf, entries, meta, snapshotStoreContract } from './snapshot-store-contract.js';

let root: string;
let counter = 0;

test.before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshots-'));
});

test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

snapshotStoreContract(test, 'file store', {
  makeBlobs: () => new FileBlobStore(path.join(root, `store-${++counter}`)),
  largeBytes: 3 * 1024 * 1024,
});

test('file store: the directory is created on first save; a missing one lists as empty', async (t) => {
  const dir = path.join(root, 'deep', 'er', 'snapshots');
  const store = new BlobSnapshotStore(new FileBlobStore(dir));
  t.deepEqual(await store.list(), []);
  await store.save(meta(1), batchesOf(entries(5)));
  t.is((await store.list()).length, 1);
});

test('file store: temporary files of a killed writer are never listed and are swept once old', async (t) => {
  const dir = path.join(root, 'temps');
  const blobs = new FileBlobStore(dir);
  const store = new BlobSnapshotStore(blobs, { orphanAgeMs: 60_000 });
  await store.save(meta(1), batchesOf(entries(5)));
  const stale = path.join(dir, '.20260101T000000000Z-aaaaaaaa.snap.0123456789ab.tmp');
  const fresh = path.join(dir, '.20260101T000000000Z-bbbbbbbb.snap.0123456789ab.tmp');
  await writeFile(stale, 'half a snapshot');
  await writeFile(fresh, 'another writer, still going');
  const old = new Date(Date.now() - 3_600_000);
  await utimes(stale, old, old);
  t.is((await store.list()).length, 1);
  await store.sweep();
  const left = await readdir(dir);
  t.false(left.includes(path.basename(stale)), 'old temporary file removed');
  t.true(left.includes(path.basename(fresh)), 'a recent one may belong to a writer still at work');
});
