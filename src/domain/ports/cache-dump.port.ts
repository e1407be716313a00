/**
 * The cache seen as a whole, for snapshots: read every live entry out, put entries back. Shaped by the
 * snapshot and restore use cases, not by a backend's API (no SCAN, no keys(), no pipelines here).
 */

/** One cache entry as it travels into a snapshot and back. */
export interface DumpedEntry {
  /** The cache key (an HMAC of the credential and the request: never a credential in clear). */
  key: string;
  /**
   * The entry's bytes as the backend encodes them. Opaque to the domain: an entry may be sealed
   * (encrypted) with a key only its credential can derive, so nothing here looks inside.
   */
  payload: Uint8Array;
  /** Time the entry has left to live, in ms (relative to when it was read, or to a snapshot's takenAt). */
  ttlMs: number;
}

export interface CacheDumpPort {
  /** Backend name ("memory", "redis"), for events and the snapshot header. */
  readonly backend: string;
  /**
   * Names how `payload` bytes are encoded. A snapshot is restored only into a cache whose
   * entryFormat is the same, so a payload is never handed to a backend that cannot read it.
   */
  readonly entryFormat: string;
  /**
   * Entries the cache has dropped to make room since it was created (a bounded memory cache), or
   * absent when it never drops any itself. A restore reports the ones dropped while it ran, so it
   * never says it restored more than the cache kept.
   */
  readonly evictions?: number;
  /** True when the cache holds no entry of ours (memory: nothing stored; Redis: no key under our prefix). */
  isEmpty(): Promise<boolean>;
  /**
   * Whether the cache still carries the mark `markRestored` left in it. A shared cache that restarted
   * or failed over without its data has lost the mark, even when replicas wrote a few entries into it
   * since: the restore decision does not hang on the cache being exactly empty.
   */
  isMarkedRestored(): Promise<boolean>;
  /**
   * Leaves the mark in the cache: it has been restored (or there was nothing to restore) since it was
   * last found without its data. Rejects when the backend is unreachable.
   */
  markRestored(): Promise<void>;
  /**
   * Every live entry, in batches, each with its remaining TTL. Streams: at no time does it hold the
   * whole cache. Entries written or expiring while it runs may or may not appear; an entry may
   * appear twice (restore keeps the first).
   */
  entries(): AsyncIterable<readonly DumpedEntry[]>;
  /**
   * Stores each entry whose key is absent, with `ttlMs` to live; never replaces an entry that is
   * present (whatever is in the cache is at least as new as a snapshot). Resolves to how many were
   * written. Rejects when the backend is unreachable.
   */
  restoreIfAbsent(entries: readonly DumpedEntry[]): Promise<number>;
}
