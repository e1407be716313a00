/**
 * The cache stack, built from the config: this replica's bounded memory cache, and with the Redis
 * backend, Redis shared by every replica behind a breaker that falls back to that memory. The
 * instrumentation wrapper (timing per backend and operation) is what the use cases get.
 */
import type { MirrorConfig } from '../config/index.js';
import type { CachePort, CacheStats } from '../../domain/ports/cache.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { LeasePort } from '../../domain/ports/lease.port.js';
import type { EventEmitter2Bus } from '../../adapters/events/eventemitter2-bus.adapter.js';
import { MemoryCache } from '../../adapters/cache/memory/memory-cache.adapter.js';
import { BodyKeys } from '../../adapters/crypto/body-keys.js';
import { InstrumentedCache } from '../../adapters/cache/instrumented-cache.adapter.js';
import { RedisCache, type NearCacheStats } from '../../adapters/cache/redis/redis-cache.adapter.js';
import { BreakerCache, type BreakerState } from '../../adapters/cache/breaker/breaker-cache.adapter.js';
import { BreakerAwareLease } from '../../adapters/lease/breaker-lease.adapter.js';
import { RedisLease } from '../../adapters/lease/redis-lease.adapter.js';
import type { SharedGovernorBackend } from '../../adapters/governor/create-governor.js';
import { cacheStatsOf } from '../../adapters/metrics/prometheus-metrics.adapter.js';
import { redisConnectionOptions } from './redis-options.js';
import { NO_LIFECYCLE, type Lifecycle } from './lifecycle.js';
import { rememberingStats, storageReport, type StorageReport } from './storage-report.js';

export interface CacheWiring {
  /** What the use cases get: the backend, timed per operation. */
  port: CachePort;
  /** The backend behind the timing wrapper (the breaker with Redis; memory; or a test's override). */
  backend: CachePort;
  /** This replica's memory cache (the breaker's fallback with Redis). */
  memory: MemoryCache;
  /** Entry count and bytes for the size gauges (and the shared layout's), when the backend can tell. */
  stats: (() => Promise<CacheStats>) | undefined;
  /** Shared flight leases for cross-replica coalescing (Redis backend only). */
  flights: LeasePort | undefined;
  /** Where the upstream governor counts fleet-wide (Redis backend only; memory otherwise). */
  governor: SharedGovernorBackend | undefined;
  /** Names of the backends /metrics lists (0 for the one not in use). */
  backends: string[];
  /** Opens and closes the backend's connections. */
  lifecycle: Lifecycle;
  /** The `storage` part of /readyz: shared bodies and entries (storage-report.ts). */
  storage: () => StorageReport;
  /** The breakers in the stack and their state now, for /readyz and /metrics before any change is heard (Redis: "cache"). */
  breakers: Record<string, () => BreakerState>;
  /** The Redis near cache's figures for /metrics (Redis backend only; undefined while it is off). */
  nearCache?: () => NearCacheStats | undefined;
}

export interface CacheWiringDeps {
  events: EventEmitter2Bus;
  clock: ClockPort;
  /** Replaces the backend (tests). */
  override?: CachePort;
  /** cache.secret, or the development fallback the key hasher uses too: keys of the shared bodies. */
  secret: string;
}

export function buildCache(config: MirrorConfig, deps: CacheWiringDeps): CacheWiring {
  const { events, clock } = deps;
  // shared bodies are sealed under keys derived from the secret that keys the cache (cache.secret)
  const bodyKeys = config.cache.shareAcrossCredentials ? new BodyKeys(deps.secret) : undefined;
  const memory = new MemoryCache({ maxBytes: config.cache.memory.maxBytes, clock, ...(bodyKeys ? { bodyKeys } : {}) });
  if (deps.override !== undefined || config.cache.backend !== 'redis') {
    const backend = deps.override ?? memory;
    const stats = rememberingStats(cacheStatsOf(backend), clock);
    return {
      port: new InstrumentedCache(backend, events),
      backend,
      memory,
      stats: stats.read,
      flights: undefined,
      governor: undefined,
      backends: [backend.backend],
      lifecycle: NO_LIFECYCLE,
      storage: () => storageReport(config.cache.shareAcrossCredentials, backend === memory ? memory : undefined, stats.last, clock),
      breakers: {},
    };
  }
  const redis = new RedisCache({
    ...redisConnectionOptions(config),
    commandTimeoutMs: config.cache.redis.commandTimeoutMs,
    scaleReads: config.cache.redis.scaleReads,
    ...(config.cache.redis.readerUrl ? { readerUrl: config.cache.redis.readerUrl } : {}),
    keyPrefix: config.cache.redis.keyPrefix,
    nearCacheBytes: config.cache.redis.nearCacheBytes,
    ...(bodyKeys ? { bodyKeys } : {}),
    events,
    clock,
  });
  const breaker = new BreakerCache(redis, memory, { ...config.cache.breaker, events, clock });
  const stats = rememberingStats(cacheStatsOf(breaker), clock);
  return {
    port: new InstrumentedCache(breaker, events),
    backend: breaker,
    memory,
    stats: stats.read,
    storage: () => storageReport(config.cache.shareAcrossCredentials, undefined, stats.last, clock),
    flights: new BreakerAwareLease(new RedisLease({ client: redis.client, keyPrefix: config.cache.redis.keyPrefix }), () => breaker.breakerState === 'closed'),
    governor: { client: redis.client, keyPrefix: config.cache.redis.keyPrefix, available: () => breaker.breakerState === 'closed', cacheEvents: events },
    backends: ['redis', 'memory'],
    breakers: { cache: () => breaker.breakerState },
    nearCache: () => redis.nearCacheStats(),
    lifecycle: {
      // never throws: an unreachable Redis starts the mirror on memory, the breaker switches later
      start: () => redis.start(),
      close: async () => {
        await breaker.close();
        await redis.close();
      },
    },
  };
}

