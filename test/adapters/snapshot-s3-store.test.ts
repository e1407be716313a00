/**
 * The S3 snapshot store against a real S3-compatible server (s3rver) on a loopback port, through the
 * AWS SDK: the store contract (with multipart uploads), and a prefix that keeps other objects apart.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { BlobSnapshotStore } from '../../src/adapters/snapshot/blob-snapshot-store.adapter.js';
import { S3BlobStore } from '../../src/adapters/snapshot/s3-blob-store.adapter.js';
import { BlobNotFoundError } from '../../src/adapters/snapshot/blob-store.js';
import { batchesOf, entries, meta, snapshotStoreContract } from './snapshot-store-contract.js';
import { startLocalS3, S3RVER_CREDENTIALS, type LocalS3 } from './snapshot-s3rver.js';

let s3: LocalS3;
let counter = 0;

test.before(async () => {
  s3 = await startLocalS3();
});

test.after.always(async () => {
  await s3?.stop();
});

snapshotStoreContract(test, 's3 store', {
  // each test its own prefix in the one bucket; parts at S3's minimum (5 MiB) so 6 MiB is multipart
  makeBlobs: () => s3.blobStore(`t${++counter}/github-mirror/`, 5 * 1024 * 1024),
  largeBytes: 6 * 1024 * 1024,
});

test('s3 store: objects outside the prefix are not snapshots; a missing object is BlobNotFound', async (t) => {
  const ours = s3.blobStore('mine/');
  const theirs = s3.blobStore('theirs/');
  await theirs.put('unrelated.manifest.json', Readable.from([Buffer.from('{}')]));
  const store = new BlobSnapshotStore(ours);
  t.deepEqual(await store.list(), []);
  await store.save(meta(1), batchesOf(entries(10)));
  t.is((await store.list()).length, 1);
  await t.throwsAsync(ours.read('nothing.snap'), { instanceOf: BlobNotFoundError });
  await t.throwsAsync(ours.readAll('nothing.manifest.json'), { instanceOf: BlobNotFoundError });
});

test('s3 store: an unreachable endpoint fails the save, it does not hang or crash', async (t) => {
  const dead = new S3BlobStore({
    bucket: 'snapshots',
    prefix: 'x/',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestTimeoutMs: 2000,
  });
  try {
    const store = new BlobSnapshotStore(dead);
    await t.throwsAsync(store.save(meta(1), batchesOf(entries(3))));
    await t.throwsAsync(store.list());
  } finally {
    dead.close();
  }
});
