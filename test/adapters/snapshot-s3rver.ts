/**
 * A real S3-compatible server (s3rver) on a loopback port for the snapshot tests, with one bucket, its
 * data in a temp dir. Not a mock: the S3 adapter talks to it over HTTP with the AWS SDK.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo, Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { S3BlobStore } from '../../src/adapters/snapshot/s3-blob-store.adapter.js';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server & { closeAllConnections?: () => void };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver accepts any signature made with these. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  directory: string;
  /** An S3BlobStore on this server (static credentials, path-style). */
  blobStore(prefix?: string, partBytes?: number): S3BlobStore;
  stop(): Promise<void>;
}

export async function startLocalS3(bucket = 'snapshots'): Promise<LocalS3> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const directory = await mkdtemp(path.join(os.tmpdir(), 'mirror-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const stores: S3BlobStore[] = [];
  return {
    endpoint,
    bucket,
    directory,
    blobStore(prefix = 'github-mirror/', partBytes?: number) {
      const store = new S3BlobStore({
        bucket,
        prefix,
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        ...(partBytes === undefined ? {} : { partBytes }),
      });
      stores.push(store);
      return store;
    },
    async stop() {
      for (const store of stores) store.close();
      server.httpServer?.closeAllConnections?.();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
