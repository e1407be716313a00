/** Injection tokens of the composition root (Symbols, one file, next to the wiring). */
export const TOKENS = {
  Config: Symbol('Config'),
  Logger: Symbol('Logger'),
  Clock: Symbol('Clock'),
  EventBus: Symbol('EventBus'),
  KeyHasher: Symbol('KeyHasher'),
  Cache: Symbol('Cache'),
  Upstream: Symbol('Upstream'),
  ResolveResource: Symbol('ResolveResource'),
  PassThrough: Symbol('PassThrough'),
  /** Registered only when auth.allowedUsers is set. */
  AdmitClient: Symbol('AdmitClient'),
  Metrics: Symbol('Metrics'),
  /** start()/close() of the cache backend's connections (Redis); no-ops for memory. */
  CacheLifecycle: Symbol('CacheLifecycle'),
} as const;
