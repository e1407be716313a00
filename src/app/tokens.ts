/** Injection tokens of the composition root (Symbols, one file, next to the wiring). */
export const TOKENS = {
  Config: Symbol('Config'),
  Logger: Symbol('Logger'),
  Clock: Symbol('Clock'),
  EventBus: Symbol('EventBus'),
  KeyHasher: Symbol('KeyHasher'),
  /** The cache stack (CacheWiring): port, backend, memory, stats, flights, lifecycle. */
  CacheWiring: Symbol('CacheWiring'),
  /** The cache port the use cases get (CacheWiring.port). */
  Cache: Symbol('Cache'),
  /** The upstream chain (UpstreamWiring): port, close, destroy. */
  Upstream: Symbol('Upstream'),
  ResolveResource: Symbol('ResolveResource'),
  PassThrough: Symbol('PassThrough'),
  /** Registered only when auth.allowedUsers is set. */
  AdmitClient: Symbol('AdmitClient'),
  Metrics: Symbol('Metrics'),
  Readiness: Symbol('Readiness'),
  /** The SnapshotService, or null when snapshots are off or the backend has no snapshot support. */
  Snapshots: Symbol('Snapshots'),
  HttpServer: Symbol('HttpServer'),
  /** Everything Mirror starts and stops (MirrorParts). */
  MirrorParts: Symbol('MirrorParts'),
} as const;
