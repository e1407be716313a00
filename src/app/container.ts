import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config.js';
import type { ClockPort } from '../domain/ports/clock.port.js';
import { systemClock } from '../domain/ports/clock.port.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import { HmacKeyHasher } from '../adapters/crypto/hmac-key-hasher.adapter.js';
import { MemoryCache } from '../adapters/cache/memory/memory-cache.adapter.js';
import { InstrumentedCache } from '../adapters/cache/instrumented-cache.adapter.js';
import { UndiciUpstream } from '../adapters/github/undici-upstream.adapter.js';
import { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.adapter.js';
import { ResolveResource } from '../domain/use-cases/resolve-resource.js';
import { PassThrough } from '../domain/use-cases/pass-through.js';

/** Used when cache.secret is empty (development only; production with Redis refuses to start). */
export const DEVELOPMENT_SECRET = 'github-mirror-development-secret';

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
  c.register(TOKENS.Cache, {
    useFactory: instanceCachingFactory((r) => {
      const bus = r.resolve<EventEmitter2Bus>(TOKENS.EventBus);
      const backend = overrides.cache ?? new MemoryCache({ maxBytes: config.cache.memory.maxBytes, clock: r.resolve<ClockPort>(TOKENS.Clock) });
      return new InstrumentedCache(backend, bus);
    }),
  });
  c.register(TOKENS.Upstream, {
    useFactory: instanceCachingFactory(
      () =>
        new UndiciUpstream({
          url: config.upstream.url,
          timeoutMs: config.upstream.timeoutMs,
          connectTimeoutMs: config.upstream.connectTimeoutMs,
          connections: config.upstream.connections,
          maxBodyBytes: config.upstream.maxBodyBytes,
        }),
    ),
  });
  c.register(TOKENS.ResolveResource, {
    useFactory: instanceCachingFactory(
      (r) =>
        new ResolveResource(r.resolve(TOKENS.Cache), r.resolve(TOKENS.Upstream), r.resolve(TOKENS.KeyHasher), r.resolve(TOKENS.EventBus), r.resolve(TOKENS.Clock), {
          ttlSeconds: config.cache.ttlSeconds,
          maxEntryBytes: config.cache.maxEntryBytes,
          freshnessMs: config.cache.freshnessMs,
        }),
    ),
  });
  c.register(TOKENS.PassThrough, {
    useFactory: instanceCachingFactory((r) => new PassThrough(r.resolve(TOKENS.Upstream), r.resolve(TOKENS.EventBus), r.resolve(TOKENS.Clock))),
  });
  c.register(TOKENS.Metrics, {
    useFactory: instanceCachingFactory((r) => new PrometheusMetrics(r.resolve(TOKENS.EventBus), { processMetrics: true })),
  });
  return c;
}
