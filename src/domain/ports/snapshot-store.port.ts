import type { DumpedEntry } from './cache-dump.port.js';
import { ErrorCode } from '../errors.js';

/**
 * Where snapshots of the cache live (a directory, an S3 bucket). Shaped by the snapshot and restore
 * use cases: save a stream of entries as one snapshot, list the committed ones, read one back.
 *
 * A snapshot is committed atomically: until `save` resolves, `list` does not show it, and a process
 * killed in the middle of a save leaves the previous snapshots as they were.
 */

/** What the use case knows about a snapshot before writing it. */
export interface SnapshotMeta {
  /** Epoch ms the snapshot started; every entry's ttlMs is relative to it. */
  takenAt: number;
  /** The cache backend it was taken from ("memory", "redis"). */
  backend: string;
  /** CacheDumpPort.entryFormat of the source: how the payloads are encoded. */
  entryFormat: string;
}

export interface SnapshotInfo extends SnapshotMeta {
  /** Unique, and sorts by time. */
  id: string;
  entries: number;
  /** Stored size (compressed). */
  bytes: number;
  /** Version of the stream format. */
  formatVersion: number;
  /**
   * Set when the snapshot is listed but cannot be used (its manifest does not read): restoring it
   * fails with SnapshotRejectedError.
   */
  problem?: string;
}

export interface SnapshotReading {
  /** As recorded in the snapshot itself (checked against the listing). */
  info: SnapshotInfo;
  /**
   * The entries in batches, ttlMs relative to info.takenAt. Each batch is verified before it is
   * yielded; iteration throws SnapshotRejectedError at the first corrupt or missing byte.
   */
  batches: AsyncIterable<readonly DumpedEntry[]>;
  /** Releases the underlying stream when the reader stops early. */
  close(): Promise<void>;
}

export interface SnapshotStorePort {
  /** Store kind for events, metrics and logs ("file", "s3"). */
  readonly name: string;
  /** Committed snapshots, newest first. */
  list(): Promise<SnapshotInfo[]>;
  /**
   * Writes the entries as a new snapshot and commits it once the last batch is written. When
   * `batches` throws, or the write fails, nothing is committed and the error is rethrown.
   * Entries' ttlMs must be relative to meta.takenAt.
   */
  save(meta: SnapshotMeta, batches: AsyncIterable<readonly DumpedEntry[]>): Promise<SnapshotInfo>;
  /** Opens a committed snapshot. Rejects with SnapshotRejectedError when its header does not read. */
  open(id: string): Promise<SnapshotReading>;
  /** Deletes a snapshot (no error when it is already gone). */
  remove(id: string): Promise<void>;
}

/** Why a snapshot was refused. Stable values: they become log fields and event reasons. */
export const SnapshotRejection = {
  /** Bytes that do not match their checksum, or lengths out of range. */
  CORRUPT: 'corrupt',
  /** The stream ends before its trailer. */
  TRUNCATED: 'truncated',
  /** Written by a format version this mirror does not read. */
  VERSION: 'version',
  /** Not a snapshot at all (wrong magic bytes). */
  FOREIGN: 'foreign',
  /** A valid snapshot whose entries this cache cannot read (another entry format). */
  INCOMPATIBLE: 'incompatible',
  /** Its manifest (the commit record) is unreadable or does not match the data. */
  MANIFEST: 'manifest',
} as const;
export type SnapshotRejection = (typeof SnapshotRejection)[keyof typeof SnapshotRejection];

/** A snapshot that cannot be used. The restore use case moves on to the next older one. */
export class SnapshotRejectedError extends Error {
  override readonly name = 'SnapshotRejectedError';
  readonly code = ErrorCode.SNAPSHOT_REJECTED;
  constructor(
    readonly reason: SnapshotRejection,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isSnapshotRejected(error: unknown): error is SnapshotRejectedError {
  return error instanceof SnapshotRejectedError;
}
