/**
 * Byte-level storage of snapshot files: a directory or an S3 bucket. The snapshot store (format,
 * manifests, ids) sits on top; a blob store only knows names and bytes.
 */
import { ErrorCode } from '../../domain/errors.js';

export interface BlobInfo {
  name: string;
  size: number;
  /** Epoch ms of the last write. */
  modifiedAt: number;
}

export interface BlobStore {
  /** "file" or "s3". */
  readonly kind: string;
  /** Where it writes, for logs (a path or s3://bucket/prefix); never holds a credential. */
  readonly location: string;
  /** Every complete blob (never one still being written). */
  list(): Promise<BlobInfo[]>;
  /**
   * Writes `body` under `name` atomically: until it resolves, readers see the previous blob of that
   * name or none, never a part. When `body` throws or the write fails, nothing is left visible.
   * Resolves to the bytes written.
   */
  put(name: string, body: AsyncIterable<Uint8Array>): Promise<number>;
  /** Streams a blob; rejects with BlobNotFoundError when there is none. */
  read(name: string): Promise<AsyncIterable<Uint8Array>>;
  /** A small blob whole (manifests); rejects with BlobNotFoundError when there is none. */
  readAll(name: string): Promise<Buffer>;
  /** No error when it is already gone. */
  delete(name: string): Promise<void>;
  /** Removes leftovers of writes interrupted more than `olderThanMs` ago; resolves to how many. */
  sweep(olderThanMs: number): Promise<number>;
  /** Releases connections (S3 client); the store is not used afterwards. */
  close?(): void;
}

export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  readonly code = ErrorCode.BLOB_NOT_FOUND;
  constructor(readonly blob: string) {
    super(`no such snapshot object: ${blob}`);
  }
}

/** Names a blob store accepts: no path separators, no leading dot (reserved for temporary files). */
export function checkBlobName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(name)) throw new RangeError(`invalid snapshot object name: ${JSON.stringify(name)}`);
}

/**
 * Runs one operation on the blob `name` (after checking the name): the store's own "not found"
 * becomes BlobNotFoundError, or, with `missing`, that value (delete: nothing to do).
 */
export async function onBlob<T>(name: string, isNotFound: (error: unknown) => boolean, operation: () => Promise<T>, missing?: () => T): Promise<T> {
  checkBlobName(name);
  try {
    return await operation();
  } catch (error) {
    if (!isNotFound(error) && !(error instanceof BlobNotFoundError)) throw error;
    if (missing !== undefined) return missing();
    throw error instanceof BlobNotFoundError ? error : new BlobNotFoundError(name);
  }
}
