/**
 * The composition root: every adapter is built here, by plain factories (src/app/wiring/*) that take
 * the config and what they need and return what they built; tsyringe registers those factories, one
 * child container per mirror instance, so several mirrors live in one process. Nothing is shared
 * between factories except through what they return.
 */
import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config/index.js';
import type { ClockPort } from '../domain/ports/clock.port.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import type { KeyHasherPort } from '../domain/ports/key-hasher.port.js';
import { EventName } from '../domain/events/events.js';
import { systemClock } from '../adapters/clock/system-clock.adapter.js';
import { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import { subscribeCacheLogs } from '../adapters/logging/cache-log.subscriber.js';
import { HmacKeyHasher } from '../adapters/crypto/hmac-key-hasher.adapter.js';
import { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.adapter.js';
import { ReadinessTracker } from '../adapters/readiness/readiness-tracker.adapter.js';
import { ResolveResource } from '../domain/use-cases/resolve-resource.js';
import { CrossCredentialRevalidation } from '../domain/use-cases/cross-credential-revalidation.js';
import { nodeDigest } from '../adapters/crypto/node-digest.adapter.js';
import { CrossReplicaCoalescing } from '../domain/use-cases/cross-replica-coalescing.js';
import { PassThrough } from '../domain/use-cases/pass-through.js';
import { AdmitClient } from '../domain/use-cases/admit-client.js';
import type { SnapshotService } from './snapshot-service.js';
import { buildSnapshotService } from './wiring/snapshots.js';
import { buildCache, type CacheWiring } from './wiring/cache.js';
import { buildUpstream, type UpstreamWiring } from './wiring/upstream.js';
import { buildHttp } from './wiring/http.js';
import { Readiness } from './wiring/readiness.js';

/** Used when cache.secret is empty (development only; production with Redis refuses to start). */
export const DEVELOPMENT_SECRET = 'github-mirror-development-secret';

export interface ContainerOverrides {
  clock?: ClockPort;
  /** Replace the cache backend (tests). */
  cache?: CachePort;
}

/** What Mirror starts and stops, in its order; nothing else of the wiring reaches it. */
export interface MirrorParts {
  config: MirrorConfig;
  logger: Logger;
  bus: EventEmitter2Bus;
  cache: CacheWiring;
  upstream: UpstreamWiring;
  metrics: PrometheusMetrics;
  readiness: Readiness;
  snapshots: SnapshotService | undefined;
  server: FastifyInstance;
}

export function buildContainer(config: MirrorConfig, logger: Logger, overrides: ContainerOverrides = {}): DependencyContainer {
  const c = rootContainer.createChildContainer();
  const once = <T>(factory: (r: DependencyContainer) => T) => ({ useFactory: instanceCachingFactory<T>(factory) });
  const bus = (r: DependencyContainer) => r.resolve<EventEmitter2Bus>(TOKENS.EventBus);
  const clock = (r: DependencyContainer) => r.resolve<ClockPort>(TOKENS.Clock);
  const keys = (r: DependencyContainer) => r.resolve<KeyHasherPort>(TOKENS.KeyHasher);
  const cache = (r: DependencyContainer) => r.resolve<CacheWiring>(TOKENS.CacheWiring);
  /** Cross-replica coalescing over the cache's shared flight leases (Redis backend only). */
  const coalescing = (r: DependencyContainer) => {
    const flights = cache(r).flights;
    return flights === undefined ? undefined : new CrossReplicaCoalescing(flights, clock(r), { waitMs: config.cache.coalesce.waitMs });
  };

  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.Logger, { useValue: logger });
  c.register(TOKENS.Clock, { useValue: overrides.clock ?? systemClock });
  c.register(
    TOKENS.EventBus,
    once((r) => {
      const events = new EventEmitter2Bus((error, event) => logger.error({ err: error, event: event.name }, 'event listener failed'));
      // the cache adapters only emit events; this writes their log lines
      subscribeCacheLogs(events, logger, { clock: clock(r) });
      return events;
    }),
  );
  c.register(TOKENS.KeyHasher, once(() => new HmacKeyHasher(config.cache.secret || DEVELOPMENT_SECRET)));
  c.register(
    TOKENS.CacheWiring,
    once((r) => buildCache(config, { events: bus(r), clock: clock(r), secret: config.cache.secret || DEVELOPMENT_SECRET, ...(overrides.cache ? { override: overrides.cache } : {}) })),
  );
  c.register(TOKENS.Cache, once((r) => cache(r).port));
  c.register(TOKENS.Upstream, once((r) => buildUpstream(config, { events: bus(r), keys: keys(r), clock: clock(r), logger, governorBackend: cache(r).governor })));
  c.register(
    TOKENS.ResolveResource,
    once(
      (r) =>
        new ResolveResource(
          cache(r).port,
          r.resolve<UpstreamWiring>(TOKENS.Upstream).port,
          keys(r),
          bus(r),
          clock(r),
          {
            ttlSeconds: config.cache.ttlSeconds,
            maxEntryBytes: config.cache.maxEntryBytes,
            freshnessMs: config.cache.freshnessMs,
          },
          coalescing(r),
          config.cache.shareAcrossCredentials ? new CrossCredentialRevalidation(cache(r).port, nodeDigest, bus(r)) : undefined,
        ),
    ),
  );
  c.register(TOKENS.PassThrough, once((r) => new PassThrough(r.resolve<UpstreamWiring>(TOKENS.Upstream).port, bus(r), clock(r))));
  if (config.auth.allowedUsers.length > 0) {
    c.register(
      TOKENS.AdmitClient,
      once(
        (r) =>
          new AdmitClient(r.resolve(TOKENS.ResolveResource), keys(r), clock(r), {
            allowedUsers: config.auth.allowedUsers,
            validationTtlSeconds: config.auth.validationTtlSeconds,
          }),
      ),
    );
  }
  c.register(
    TOKENS.Metrics,
    once((r) => {
      const wiring = cache(r);
      return new PrometheusMetrics(bus(r), {
        processMetrics: true,
        ...(wiring.stats ? { cacheStats: wiring.stats } : {}),
        activeBackend: () => wiring.port.backend,
        backends: wiring.backends,
        ...(wiring.nearCache ? { nearCache: wiring.nearCache } : {}),
        breakers: { ...wiring.breakers, ...r.resolve<UpstreamWiring>(TOKENS.Upstream).breakers },
        ...(config.snapshot.store === 'none' ? {} : { snapshot: { store: config.snapshot.store, intervalSeconds: config.snapshot.intervalSeconds } }),
      });
    }),
  );
  c.register(
    TOKENS.Readiness,
    once((r) => {
      const breakers = { ...cache(r).breakers, ...r.resolve<UpstreamWiring>(TOKENS.Upstream).breakers };
      const readiness = new Readiness(cache(r).port, new ReadinessTracker(bus(r), Date.now, breakers), config.upstream.url);
      readiness.add('storage', () => ({ ...cache(r).storage() }));
      return readiness;
    }),
  );
  c.register(
    TOKENS.Snapshots,
    once((r) => {
      if (config.snapshot.store === 'none') return null;
      // snapshots of the cache to a directory or S3, restore at start; none when the backend has no snapshot support
      const snapshots = buildSnapshotService({ config, logger, events: bus(r), clock: clock(r), cacheBackend: cache(r).backend });
      if (snapshots === undefined) return null;
      const readiness = r.resolve<Readiness>(TOKENS.Readiness);
      readiness.add('snapshot', () => ({ ...snapshots.readiness() }));
      // Redis back after an outage: restore it at once if it came back without its data
      bus(r).on(EventName.backendChanged, (event) => {
        if (readiness.state !== 'ready' || event.backend !== 'redis') return;
        snapshots.primaryBack().catch((error: unknown) => logger.warn({ err: error }, 'restore after reconnect failed'));
      });
      return snapshots;
    }),
  );
  c.register(
    TOKENS.HttpServer,
    once((r) => {
      const readiness = r.resolve<Readiness>(TOKENS.Readiness);
      const metrics = r.resolve<PrometheusMetrics>(TOKENS.Metrics);
      const admit = c.isRegistered(TOKENS.AdmitClient) ? r.resolve<AdmitClient>(TOKENS.AdmitClient) : undefined;
      return buildHttp(config, {
        resolveResource: r.resolve<ResolveResource>(TOKENS.ResolveResource),
        passThrough: r.resolve<PassThrough>(TOKENS.PassThrough),
        ...(admit ? { admit: (credential: string | undefined) => admit.execute(credential) } : {}),
        events: bus(r),
        readiness: () => readiness.report(),
        metrics: () => metrics.render(),
        logger,
      });
    }),
  );
  c.register(
    TOKENS.MirrorParts,
    once(
      (r): MirrorParts => ({
        config,
        logger,
        bus: bus(r),
        cache: cache(r),
        upstream: r.resolve<UpstreamWiring>(TOKENS.Upstream),
        metrics: r.resolve<PrometheusMetrics>(TOKENS.Metrics),
        readiness: r.resolve<Readiness>(TOKENS.Readiness),
        snapshots: r.resolve<SnapshotService | null>(TOKENS.Snapshots) ?? undefined,
        server: r.resolve<FastifyInstance>(TOKENS.HttpServer),
      }),
    ),
  );
  return c;
}
