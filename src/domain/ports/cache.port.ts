import type { CachedEntry } from '../model.js';

/**
 * Where cached answers live. Shaped by what the use cases need: look an answer up, keep one, forget one.
 * Implementations: memory (bounded LRU), redis, and the breaker that composes them.
 * `lookup` and `store` may reject (backend down); use cases treat a failed lookup as a miss.
 */
export interface CachePort {
  /** Stable backend name for events and metrics ("memory", "redis"). */
  readonly backend: string;
  lookup(key: string): Promise<CachedEntry | undefined>;
  store(key: string, entry: CachedEntry, ttlSeconds: number): Promise<void>;
  forget(key: string): Promise<void>;
}

/** Size of a cache, for `github_mirror_cache_size` / `github_mirror_cached_objects`. */
export interface CacheStatsPort {
  stats(): Promise<{ entries: number; bytes: number }>;
}
