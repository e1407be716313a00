import type { CachedEntry, StoredRepresentation } from '../model.js';

/**
 * Where cached answers live. Shaped by what the use cases need: look an answer up, keep one, forget one,
 * and — when bodies are shared across credentials — see which bodies a resource already has.
 * Implementations: memory (bounded LRU), redis, and the breaker that composes them.
 * `lookup` and `store` may reject (backend down); use cases treat a failed lookup as a miss.
 *
 * `resourceKey` (KeyHasherPort.resourceKeyFor: the request without its credential) selects the
 * shared layout (docs/architecture.md, "Storage layout"): the credential's entry then keeps its own
 * ETag, headers and validation time and points at a body stored once per resource by content, which
 * every credential's entry of that resource with the same body shares. Without it an entry holds its
 * own body (the per-credential layout). A backend that cannot share bodies ignores it.
 */
export interface CachePort {
  /** Stable backend name for events and metrics ("memory", "redis"). */
  readonly backend: string;
  /**
   * The whole entry (its body joined in). A shared entry whose body is gone is a miss, never an error.
   * `sealKey` is key material derived from the client's credential and the server secret
   * (KeyHasherPort.sealKeyFor). Backends that keep entries outside the process (Redis, snapshots)
   * encrypt and authenticate entries with it; an entry that does not open with it is a miss.
   */
  lookup(key: string, sealKey?: Uint8Array, resourceKey?: string): Promise<CachedEntry | undefined>;
  store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void>;
  forget(key: string, resourceKey?: string): Promise<void>;
  /**
   * The bodies stored for a resource (shared layout), most recently validated first, at most `limit`,
   * without any credential's own headers. [] when there are none or the backend does not share bodies.
   */
  representations(resourceKey: string, limit: number): Promise<readonly StoredRepresentation[]>;
}

/** Size of a cache, for `github_mirror_cache_size` / `github_mirror_cached_objects` / `github_mirror_cached_bodies`. */
export interface CacheStatsPort {
  stats(): Promise<CacheStats>;
}

export interface CacheStats {
  /** Keys (entries, and with shared bodies also bodies and indexes). */
  entries: number;
  bytes: number;
  /**
   * Shared layout: credentials' entries and the bodies they point at (100 tokens reading one resource:
   * 100 entries, 1 body). Redis estimates both from a sample of its keys; absent = no shared layout.
   */
  layout?: { entries: number; bodies: number; estimated: boolean };
}
