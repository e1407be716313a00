/**
 * The typed result of loading the configuration (DESIGN.md §5): `MirrorConfig` and the value lists
 * behind its enumerated fields. Adapters depend on these types only, never on convict.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const CACHE_BACKENDS = ['memory', 'redis'] as const;
export const REDIS_SCALE_READS = ['master', 'slave', 'all'] as const;
export const SNAPSHOT_STORES = ['none', 'file', 's3'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type CacheBackend = (typeof CACHE_BACKENDS)[number];
export type RedisScaleReads = (typeof REDIS_SCALE_READS)[number];
export type SnapshotStoreKind = (typeof SNAPSHOT_STORES)[number];

export interface HostPort {
  host: string;
  port: number;
}

export interface BreakerConfig {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
}

export interface MirrorConfig {
  server: {
    port: number;
    host: string;
    /** '' = derived from the request. Never ends with '/'. */
    publicUrl: string;
    trustProxy: boolean;
    bodyLimitBytes: number;
    bodyTimeoutMs: number;
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    shutdownGraceMs: number;
    tls: { cert: string; key: string };
  };
  log: { level: LogLevel; requests: boolean };
  upstream: {
    /** Never ends with '/'. */
    url: string;
    timeoutMs: number;
    connectTimeoutMs: number;
    connections: number;
    writeConnections: number;
    maxBodyBytes: number;
    breaker: BreakerConfig & { enabled: boolean };
    governor: GovernorConfig;
  };
  cache: {
    backend: CacheBackend;
    memory: { maxBytes: number };
    ttlSeconds: number;
    maxEntryBytes: number;
    freshnessMs: number;
    coalesce: { waitMs: number };
    /** Bodies stored once per resource and revalidated across credentials (docs/architecture.md, "Storage layout"). */
    shareAcrossCredentials: boolean;
    secret: string;
    redis: {
      url: string;
      /** '' = read from `url`. */
      readerUrl: string;
      username: string;
      password: string;
      tls: boolean;
      sentinels: HostPort[];
      sentinelName: string;
      sentinelPassword: string;
      clusterNodes: HostPort[];
      scaleReads: RedisScaleReads;
      keyPrefix: string;
      commandTimeoutMs: number;
      /** Bytes of the Redis near cache; 0 = off. */
      nearCacheBytes: number;
    };
    breaker: BreakerConfig & { timeoutMs: number };
  };
  auth: {
    /** [] = anyone with a token GitHub accepts (or no token). */
    allowedUsers: string[];
    validationTtlSeconds: number;
  };
  rewrite: { bodyUrls: boolean };
  snapshot: {
    store: SnapshotStoreKind;
    dir: string;
    intervalSeconds: number;
    retain: number;
    s3: { bucket: string; prefix: string; region: string; endpoint: string; forcePathStyle: boolean };
  };
}

/** upstream.governor: GitHub's secondary rate limits per credential, shared by the fleet (issue 15). */
export interface GovernorConfig {
  enabled: boolean;
  maxConcurrent: number;
  pointsPerMinute: number;
  writeSpacingMs: number;
  maxWaitMs: number;
  /** Redis backend: length of a lease of reads (0 = none). */
  leaseMs: number;
}
