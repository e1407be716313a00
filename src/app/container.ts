import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config.js';
import type { ClockPort } from '../domain/ports/clock.port.js';
import { systemClock } from '../adapters/clock/system-clock.adapter.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import { HmacKeyHasher } from '../adapters/crypto/hmac-key-hasher.adapter.js';
import { MemoryCache } from '../adapters/cache/memory/memory-cache.adapter.js';
import { InstrumentedCache } from '../adapters/cache/instrumented-cache.adapter.js';
import { RedisCache } from '../adapters/cache/redis/redis-cache.adapter.js';
import { BreakerCache } from '../adapters/cache/breaker/breaker-cache.adapter.js';
import { BreakerAwareLease } from '../adapters/cache/breaker/breaker-lease.adapter.js';
import { RedisLease } from '../adapters/cache/redis/redis-lease.adapter.js';
import type { LeasePort } from '../domain/ports/lease.port.js';
import { UndiciUpstream } from '../adapters/github/undici-upstream.adapter.js';
import { UpstreamBreaker } from '../adapters/github/upstream-breaker.adapter.js';
import { GovernedUpstream } from '../adapters/github/governed-upstream.adapter.js';
import { createGovernor, type SharedGovernorBackend } from '../adapters/governor/create-governor.js';
import { PrometheusMetrics, cacheStatsOf } from '../adapters/metrics/prometheus-metrics.adapter.js';
import { ResolveResource } from '../domain/use-cases/resolve-resource.js';
import { PassThrough } from '../domain/use-cases/pass-through.js';
import { AdmitClient } from '../domain/use-cases/admit-client.js';
import { buildSnapshotService, redisConnectionOptions, SNAPSHOT_SERVICE } from './snapshot-service.js';

/** Used when cache.secret is empty (development only; production with Redis refuses to start). */
export const DEVELOPMENT_SECRET = 'github-mirror-development-secret';

/** Opens and closes the cache backend's connections (Mirror.start / Mirror.stop). */
export interface CacheLifecycle {
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface ContainerOverrides {
  clock?: ClockPort;
  /** Replace the cache backend (tests). */
  cache?: CachePort;
}

/**
 * The composition root: every adapter is built here from plain options taken out of the config.
 * One child container per mirror instance, so several mirrors can live in one process.
 */
export function buildContainer(config: MirrorConfig, logger: Logger, overrides: ContainerOverrides = {}): DependencyContainer {
  const c = rootContainer.createChildContainer();
  /** The backend behind the instrumentation wrapper: its stats() (when it has one) feeds the cache size gauges. */
  let cacheBackend: CachePort | undefined;
  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.Logger, { useValue: logger });
  c.register(TOKENS.Clock, { useValue: overrides.clock ?? systemClock });
  c.register(TOKENS.EventBus, {
    useFactory: instanceCachingFactory(
      () => new EventEmitter2Bus((error, event) => logger.error({ err: error, event: event.name }, 'event listener failed')),
    ),
  });
  c.register(TOKENS.KeyHasher, {
    useFactory: instanceCachingFactory(() => new HmacKeyHasher(config.cache.secret || DEVELOPMENT_SECRET)),
  });
  let lifecycle: CacheLifecycle = { start: () => Promise.resolve(), close: () => Promise.resolve() };
  /** Shared flight leases for cross-replica coalescing (Redis backend only). */
  let flights: LeasePort | undefined;
  /** Where the upstream governor counts, fleet-wide (Redis backend only; memory otherwise). */
  let sharedGovernor: SharedGovernorBackend | undefined;
  c.register(TOKENS.Cache, {
    useFactory: instanceCachingFactory((r) => {
      const bus = r.resolve<EventEmitter2Bus>(TOKENS.EventBus);
      const clock = r.resolve<ClockPort>(TOKENS.Clock);
      const memory = new MemoryCache({ maxBytes: config.cache.memory.maxBytes, clock });
      let backend: CachePort = overrides.cache ?? memory;
      if (overrides.cache === undefined && config.cache.backend === 'redis') {
        // Redis shared by every replica, behind a breaker that falls back to this replica's memory.
        const redis = new RedisCache({
          ...redisConnectionOptions(config),
          commandTimeoutMs: config.cache.redis.commandTimeoutMs,
          scaleReads: config.cache.redis.scaleReads,
          ...(config.cache.redis.readerUrl ? { readerUrl: config.cache.redis.readerUrl } : {}),
          keyPrefix: config.cache.redis.keyPrefix,
          events: bus,
          logger,
          clock,
        });
        const breaker = new BreakerCache(redis, memory, { ...config.cache.breaker, events: bus, logger, clock });
        backend = breaker;
        sharedGovernor = { client: redis.client, keyPrefix: config.cache.redis.keyPrefix, available: () => breaker.breakerState === 'closed', cacheEvents: bus };
        flights = new BreakerAwareLease(new RedisLease({ client: redis.client, keyPrefix: config.cache.redis.keyPrefix }), () => breaker.breakerState === 'closed');
        lifecycle = {
          // never throws: an unreachable Redis starts the mirror on memory, the breaker switches later
          start: () => redis.start(),
          close: async () => {
            await breaker.close();
            await redis.close();
          },
        };
      }
      cacheBackend = backend;
      return new InstrumentedCache(backend, bus);
    }),
  });
  c.register(TOKENS.CacheLifecycle, {
    useFactory: (r) => {
      r.resolve(TOKENS.Cache);
      return lifecycle;
    },
  });
  c.register(TOKENS.Upstream, {
    // undici, wrapped by the upstream breaker (OFFLINE_* at once while GitHub is down), wrapped by the
    // upstream governor (secondary limits per credential; a held credential is answered 429 without
    // reaching GitHub or the breaker).
    // The outermost object's close()/destroy() go down the chain.
    useFactory: instanceCachingFactory((r) => {
      const undici = new UndiciUpstream({
        url: config.upstream.url,
        timeoutMs: config.upstream.timeoutMs,
        connectTimeoutMs: config.upstream.connectTimeoutMs,
        connections: config.upstream.connections,
        maxBodyBytes: config.upstream.maxBodyBytes,
      });
      const { enabled, ...breakerOptions } = config.upstream.breaker;
      const guarded = enabled ? new UpstreamBreaker(undici, r.resolve(TOKENS.EventBus), breakerOptions) : undici;
      r.resolve(TOKENS.Cache); // the cache backend first: with Redis, the governor counts there (issue 15)
      const clock = r.resolve<ClockPort>(TOKENS.Clock);
      const governor = createGovernor({
        ...config.upstream.governor,
        clock,
        events: r.resolve(TOKENS.EventBus),
        slotTtlMs: Math.max(60_000, 3 * config.upstream.timeoutMs),
        ...(sharedGovernor === undefined ? {} : { shared: sharedGovernor }),
        onRedisError: (error) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'upstream governor: Redis failing, counting in memory'),
      });
      return new GovernedUpstream(guarded, r.resolve(TOKENS.KeyHasher), clock, governor);
    }),
  });
  c.register(TOKENS.ResolveResource, {
    useFactory: instanceCachingFactory((r) => {
      const cache = r.resolve<CachePort>(TOKENS.Cache);
      return new ResolveResource(
        cache,
        r.resolve(TOKENS.Upstream),
        r.resolve(TOKENS.KeyHasher),
        r.resolve(TOKENS.EventBus),
        r.resolve(TOKENS.Clock),
        {
          ttlSeconds: config.cache.ttlSeconds,
          maxEntryBytes: config.cache.maxEntryBytes,
          freshnessMs: config.cache.freshnessMs,
          coalesceWaitMs: config.cache.coalesce.waitMs,
        },
        flights,
      );
    }),
  });
  if (config.auth.allowedUsers.length > 0) {
    c.register(TOKENS.AdmitClient, {
      useFactory: instanceCachingFactory(
        (r) =>
          new AdmitClient(r.resolve(TOKENS.ResolveResource), r.resolve(TOKENS.KeyHasher), r.resolve(TOKENS.Clock), {
            allowedUsers: config.auth.allowedUsers,
            validationTtlSeconds: config.auth.validationTtlSeconds,
          }),
      ),
    });
  }
  c.register(TOKENS.PassThrough, {
    useFactory: instanceCachingFactory((r) => new PassThrough(r.resolve(TOKENS.Upstream), r.resolve(TOKENS.EventBus), r.resolve(TOKENS.Clock))),
  });
  c.register(TOKENS.Metrics, {
    useFactory: instanceCachingFactory((r) => {
      const cache = r.resolve<CachePort>(TOKENS.Cache);
      return new PrometheusMetrics(r.resolve(TOKENS.EventBus), {
        processMetrics: true,
        cacheStats: cacheStatsOf(cacheBackend),
        activeBackend: () => cache.backend,
        // With Redis, the breaker may fall back to memory: both are listed (0 for the one not in use).
        backends: config.cache.backend === 'redis' ? ['redis', 'memory'] : [cache.backend],
        ...(config.snapshot.store === 'none' ? {} : { snapshot: { store: config.snapshot.store, intervalSeconds: config.snapshot.intervalSeconds } }),
      });
    }),
  });
  if (config.snapshot.store !== 'none') {
    // snapshots of the cache to a directory or S3, restore at start (issue 4); the service may be
    // undefined when the backend has no snapshot support
    c.register(SNAPSHOT_SERVICE, {
      useFactory: instanceCachingFactory((r) => {
        r.resolve(TOKENS.Cache);
        return buildSnapshotService({ config, logger, events: r.resolve(TOKENS.EventBus), clock: r.resolve(TOKENS.Clock), cacheBackend }) ?? null;
      }),
    });
  }
  return c;
}
