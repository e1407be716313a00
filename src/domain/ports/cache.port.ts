import type { CachedEntry } from '../model.js';

/**
 * Where cached answers live. Shaped by what the use cases need: look an answer up, keep one, forget one.
 * Implementations: memory (bounded LRU), redis, and the breaker that composes them.
 * `lookup` and `store` may reject (backend down); use cases treat a failed lookup as a miss.
 */
export interface CachePort {
  /** Stable backend name for events and metrics ("memory", "redis"). */
  readonly backend: string;
  /**
   * `sealKey` is key material derived from the client's credential and the server secret
   * (KeyHasherPort.sealKeyFor). Backends that keep entries outside the process (Redis, snapshots)
   * encrypt and authenticate entries with it; an entry that does not open with it is a miss.
   */
  lookup(key: string, sealKey?: Uint8Array): Promise<CachedEntry | undefined>;
  store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array): Promise<void>;
  forget(key: string): Promise<void>;
}

/** Size of a cache, for `github_mirror_cache_size` / `github_mirror_cached_objects`. */
export interface CacheStatsPort {
  stats(): Promise<{ entries: number; bytes: number }>;
}
