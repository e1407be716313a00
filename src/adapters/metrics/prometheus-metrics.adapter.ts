import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import {
  EventName,
  type BreakerChangedEvent,
  type CacheOperationEvent,
  type CrossCredentialRevalidationEvent,
  type DomainEventName,
  type HttpCompletedEvent,
  type ResourceResolvedEvent,
  type SnapshotEvent,
  type UpstreamCalledEvent,
} from '../../domain/events/events.js';
import type { DomainEventListener, EventSubscriber } from '../events/eventemitter2-bus.adapter.js';
import type { CacheStatsPort } from '../../domain/ports/cache.port.js';
import type { NearCacheStats } from '../cache/redis/redis-cache.adapter.js';
import { SlidingMinimum } from './sliding-minimum.js';
import { FastCounter, FastHistogram, type FastCounterChild, type FastHistogramChild } from './fast-histogram.js';
import { GovernorMetrics } from './governor-metrics.js';
import { ClientLabels, type ClientLabelsOptions } from './client-label.js';
import {
  BREAKER_STATES,
  CROSS_CREDENTIAL_RESULTS,
  MAX_CHILDREN,
  MAX_NAMES,
  NestedCache,
  OUTCOME_VALUES,
  RATE_LIMIT_RESOURCES,
  UPSTREAM_RESULTS,
  methodLabel,
  snapshotOutcome,
  statusClassLabel,
  statusLabel,
} from './label-values.js';

/**
 * Buckets of `request_latency_seconds` and `github_mirror_upstream_request_seconds` (seconds): fine from
 * 50 µs to 2.5 ms (memory hits), then roughly ×1.5–2 per step up to 60 s (misses, timeouts). A quantile is
 * interpolated inside one bucket, so a bucket's width bounds the error of p90/p95/p99.
 */
export const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01,
  0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60,
];

/** Buckets of `github_mirror_cache_operation_seconds`: a memory lookup takes microseconds, a Redis round trip about a millisecond. */
export const CACHE_OPERATION_BUCKETS = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05,
  0.1, 0.25, 0.5, 1, 2.5,
];

/** Width of the window of `github_mirror_rate_limit_remaining_min`. */
export const RATE_LIMIT_WINDOW_MS = 5 * 60_000;

type CacheStats = Awaited<ReturnType<CacheStatsPort['stats']>>;

/** The part of the event bus the metrics need (the eventemitter2 adapter has it). */


export interface PrometheusMetricsOptions {
  /** Collect Node process metrics (CPU, heap, event loop lag, GC) into this registry. */
  processMetrics?: boolean;
  /** Size of the cache, read at scrape time (`github_mirror_cache_size`, `github_mirror_cached_objects`). */
  cacheStats?: () => Promise<CacheStats>;
  /** Longest a scrape waits for `cacheStats` before leaving the two gauges out (default 1000 ms). */
  cacheStatsTimeoutMs?: number;
  /** The backend in use, read at scrape time. Without it, the last `cache.backend_changed` event (or `backends[0]`). */
  activeBackend?: () => string;
  /** Backends this mirror may use: each gets a `github_mirror_cache_backend` series (0 when not active). */
  backends?: readonly string[];
  /** When snapshots are on: exported as `github_mirror_snapshot_interval_seconds{store}` (the alerts use it). */
  snapshot?: { store: string; intervalSeconds: number };
  /** Epoch ms (tests). */
  now?: () => number;
  /** Width of the `github_mirror_rate_limit_remaining_min` window (default 5 minutes). */
  rateLimitWindowMs?: number;
  /** The breakers' state now, read at scrape time: `github_mirror_breaker_state` is there from the first scrape, not from the first change. */
  breakers?: Readonly<Record<string, () => BreakerChangedEvent['state']>>;
  /** Bounds of the `client` label (default: 50 names admitted after 3 sightings, the rest `other`). */
  clientLabels?: ClientLabelsOptions;
  /** The Redis near cache's counters and size, read at scrape time (`github_mirror_near_cache_*`); undefined = off. */
  nearCache?: () => NearCacheStats | undefined;
}

const NEAR_CACHE_EVENTS = ['fill', 'voided', 'invalidation', 'flush', 'eviction'] as const;

interface Observer {
  observe(value: number): void;
}

interface Incrementer {
  inc(value?: number): void;
}

/**
 * Metrics fed by domain events, in a Registry of their own (several mirrors may share one process; the
 * global registry is never used). Label values are bounded: outcome names, status codes, methods, backend
 * and breaker names. Never a token, a URL, a path or a login.
 *
 * The per-request path (one `http.request.completed`, one or two `cache.operation`) costs a Map lookup
 * and a prom-client child update: label children are created once per label set and kept.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly now: () => number;

  private readonly requestLatency: FastHistogram<'cache' | 'status' | 'method'>;
  /** outcome → status → method → child: three Map lookups, no string built per request. */
  private readonly requestChildren = new NestedCache<string, number, string, FastHistogramChild>();

  private readonly cacheOperation: FastHistogram<'backend' | 'operation' | 'result'>;
  private readonly cacheOperationChildren = new NestedCache<string, string, string, FastHistogramChild>();
  private readonly cacheErrors: Counter<'backend' | 'operation'>;
  private readonly cacheCorrupt: Counter<'backend'>;

  private readonly upstreamLatency: FastHistogram<'result' | 'status_class'>;
  private readonly upstreamRequests: FastCounter<'result' | 'status_class' | 'quota' | 'client'>;
  private readonly quotaSaved: FastCounter<'client' | 'reason'>;
  /** quota_saved children by client label (bounded by the client labels), one per reason. */
  private readonly quotaSavedChildren = new Map<string, Partial<Record<'fresh' | 'not_modified' | 'coalesced', FastCounterChild>>>();
  private readonly clients: ClientLabels;
  private readonly upstreamChildren = new Map<string, { latency: Observer; count: Incrementer }>();
  private readonly rateLimitWindows = new Map<string, SlidingMinimum>();
  private readonly rateLimitWindowMs: number;

  private readonly coalesced: Counter<'scope'>;
  private readonly crossCredential: Counter<'kind' | 'result'>;
  private readonly crossCredentialSaved: Counter;
  private readonly governor: GovernorMetrics;
  private readonly breakerState: Gauge<'breaker' | 'state'>;
  private readonly backends: Set<string>;
  private lastBackend: string | undefined;

  private readonly snapshotLastSuccess: Gauge<'store'>;
  private readonly snapshotDuration: Gauge<'store'>;
  private readonly snapshotEntries: Gauge<'store'>;
  private readonly snapshotBytes: Gauge<'store'>;
  private readonly snapshots: Counter<'store' | 'outcome'>;
  private readonly restoreLastSuccess: Gauge<'store'>;
  private readonly restoreDuration: Gauge<'store'>;
  private readonly restoreEntries: Gauge<'store'>;
  private readonly restoreBytes: Gauge<'store'>;
  private readonly restores: Counter<'store' | 'outcome'>;
  private readonly restoreInProgress: Gauge<'store'>;
  private readonly names = new Map<string, Set<string>>();

  private pendingStats: Promise<CacheStats | undefined> | undefined;

  constructor(bus: EventSubscriber, options: PrometheusMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.rateLimitWindowMs = options.rateLimitWindowMs ?? RATE_LIMIT_WINDOW_MS;
    this.clients = new ClientLabels(options.clientLabels);
    this.backends = new Set((options.backends ?? []).map((b) => this.bounded('backend', b)));
    const registers = [this.registry];

    // --- client requests (names of the Python mirror, kept) ---
    this.requestLatency = new FastHistogram({
      name: 'request_latency_seconds',
      help: 'Time to answer a client request, by X-Cache outcome (cache), status and method',
      labelNames: ['cache', 'status', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
      counter: { name: 'http_request_total', help: 'Client requests answered, by X-Cache outcome (cache), status and method' },
    });

    // --- cache ---
    const stats = options.cacheStats;
    const statsTimeoutMs = options.cacheStatsTimeoutMs ?? 1000;
    const scrapeStats = (): Promise<CacheStats | undefined> => {
      if (stats === undefined) return Promise.resolve(undefined);
      this.pendingStats ??= withTimeout(stats(), statsTimeoutMs).finally(() => {
        this.pendingStats = undefined;
      });
      return this.pendingStats;
    };
    new Gauge({
      name: 'github_mirror_cache_size',
      help: 'Bytes held by the cache backend in use (absent when the backend cannot tell)',
      registers,
      async collect() {
        const s = await scrapeStats();
        if (s === undefined) this.remove();
        else this.set(s.bytes);
      },
    });
    new Gauge({
      name: 'github_mirror_cached_objects',
      help: 'Entries held by the cache backend in use (absent when the backend cannot tell)',
      registers,
      async collect() {
        const s = await scrapeStats();
        if (s === undefined) this.remove();
        else this.set(s.entries);
      },
    });
    const layoutGauge = (name: string, help: string, pick: (layout: NonNullable<CacheStats['layout']>) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const layout = (await scrapeStats())?.layout;
          if (layout === undefined) this.remove();
          else this.set(pick(layout));
        },
      });
    };
    layoutGauge(
      'github_mirror_cached_bodies',
      'Bodies stored once per resource and shared by the credentials’ entries (cache.shareAcrossCredentials; Redis: estimated from a sample of keys)',
      (layout) => layout.bodies,
    );
    layoutGauge(
      'github_mirror_cached_credential_entries',
      'Credentials’ entries pointing at shared bodies (cache.shareAcrossCredentials; Redis: estimated from a sample of keys)',
      (layout) => layout.entries,
    );
    this.cacheOperation = new FastHistogram({
      name: 'github_mirror_cache_operation_seconds',
      help: 'Time of one cache operation per backend (the latency the backend adds); result is hit/miss for lookups, ok otherwise, or error',
      labelNames: ['backend', 'operation', 'result'],
      buckets: CACHE_OPERATION_BUCKETS,
      registers,
    });
    this.cacheErrors = new Counter({
      name: 'github_mirror_cache_errors_total',
      help: 'Cache operations that failed (the request went on as a miss or without storing)',
      labelNames: ['backend', 'operation'],
      registers,
    });
    this.cacheCorrupt = new Counter({
      name: 'github_mirror_cache_corrupt_total',
      help: 'Cache entries found unreadable (dropped and fetched again)',
      labelNames: ['backend'],
      registers,
    });
    const near = options.nearCache;
    if (near !== undefined) {
      // counters kept by the cache itself (a hit costs an increment, no event): read at scrape time
      new Counter({
        name: 'github_mirror_near_cache_hits_total',
        help: 'Redis lookups answered from the near cache (an in-process copy kept correct by Redis invalidations), without a round trip',
        registers,
        collect() {
          this.reset();
          this.inc(near()?.hits ?? 0);
        },
      });
      new Counter({
        name: 'github_mirror_near_cache_events_total',
        help:
          'Redis near cache: fill = a lookup result kept, voided = not kept (an invalidation came before its reply), ' +
          'invalidation = a key changed in Redis (or by this replica), flush = everything dropped (FLUSHALL, a lost connection), eviction = dropped for the size bound',
        labelNames: ['event'],
        registers,
        collect() {
          const figures = near();
          this.reset();
          const values = [figures?.fills, figures?.voided, figures?.invalidations, figures?.flushes, figures?.evictions];
          NEAR_CACHE_EVENTS.forEach((event, i) => this.inc({ event }, values[i] ?? 0));
        },
      });
      const nearGauge = (name: string, help: string, pick: (figures: NearCacheStats) => number): void => {
        new Gauge({
          name,
          help,
          registers,
          collect() {
            const figures = near();
            if (figures === undefined) this.remove();
            else this.set(pick(figures));
          },
        });
      };
      nearGauge('github_mirror_near_cache_bytes', 'Bytes held by the Redis near cache', (f) => f.bytes);
      nearGauge('github_mirror_near_cache_entries', 'Copies held by the Redis near cache', (f) => f.entries);
      nearGauge('github_mirror_near_cache_armed', '1 while the Redis near cache serves (tracking on and invalidations arriving), 0 while it is off', (f) => (f.armed ? 1 : 0));
    }
    const activeBackend = options.activeBackend;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the metric as `this`
    const self = this;
    new Gauge({
      name: 'github_mirror_cache_backend',
      help: 'Cache backend in use: 1 for the active backend, 0 for the others',
      labelNames: ['backend'],
      registers,
      collect() {
        const active = activeBackend !== undefined ? self.bounded('backend', activeBackend()) : self.lastBackend;
        if (active !== undefined) self.backends.add(active);
        this.reset();
        for (const backend of self.backends) this.set({ backend }, backend === active ? 1 : 0);
      },
    });

    // --- upstream ---
    this.upstreamLatency = new FastHistogram({
      name: 'github_mirror_upstream_request_seconds',
      help: 'Time of one call to GitHub, by result (ok, timeout, connection_error, offline, refused, body_too_large) and status class',
      labelNames: ['result', 'status_class'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamRequests = new FastCounter({
      name: 'github_mirror_upstream_requests_total',
      help: 'Calls to GitHub, by result, status class, whether they counted against the client quota (counted|free) and client (first User-Agent product, 50 most seen, the rest other)',
      labelNames: ['result', 'status_class', 'quota', 'client'],
      registers,
    });
    this.quotaSaved = new FastCounter({
      name: 'github_mirror_quota_saved_total',
      help: 'Client GET/HEAD answered without spending primary quota, by client and reason (fresh, not_modified, coalesced)',
      labelNames: ['client', 'reason'],
      registers,
    });
    const windows = this.rateLimitWindows;
    new Gauge({
      name: 'github_mirror_rate_limit_remaining_min',
      help: `Lowest x-ratelimit-remaining GitHub sent in the last ${Math.round(this.rateLimitWindowMs / 1000)} s, per rate-limit resource (any client)`,
      labelNames: ['resource'],
      registers,
      collect() {
        this.reset();
        for (const [resource, window] of windows) {
          const min = window.minimum();
          if (min !== undefined) this.set({ resource }, min);
        }
      },
    });
    this.coalesced = new Counter({
      name: 'github_mirror_coalesced_requests_total',
      help: 'Requests that shared another request’s upstream call instead of making their own, by scope (local|shared)',
      labelNames: ['scope'],
      registers,
    });
    this.crossCredential = new Counter({
      name: 'github_mirror_cross_credential_revalidations_total',
      help:
        'Credentials with no entry of their own revalidated against bodies stored for others (kind=shared) or against ' +
        'the empty-list guess (kind=guess): 304 = GitHub confirmed one (served, free), 200 = any other answer ' +
        '(fetched as usual), error = no usable answer',
      labelNames: ['kind', 'result'],
      registers,
    });
    for (const kind of ['shared', 'guess']) for (const result of CROSS_CREDENTIAL_RESULTS) this.crossCredential.inc({ kind, result }, 0);
    this.crossCredentialSaved = new Counter({
      name: 'github_mirror_cross_credential_quota_saved_total',
      help: 'Quota units cross-credential revalidation saved (a 304 instead of a 200 that would have counted)',
      registers,
    });
    this.governor = new GovernorMetrics(registers, this.now);
    const breakerSources = Object.entries(options.breakers ?? {});
    this.breakerState = new Gauge({
      name: 'github_mirror_breaker_state',
      help: 'Circuit breaker state: 1 for the current state (closed, open, half_open) of each breaker, 0 for the others',
      labelNames: ['breaker', 'state'],
      registers,
      collect() {
        for (const [breaker, state] of breakerSources) self.onBreakerChanged({ name: EventName.breakerChanged, breaker, state: state() });
      },
    });

    // --- snapshots ---
    const snapshotGauge = (name: string, help: string): Gauge<'store'> => new Gauge({ name, help, labelNames: ['store'], registers });
    this.snapshotLastSuccess = snapshotGauge('github_mirror_snapshot_last_success_timestamp_seconds', 'Epoch seconds when the last snapshot succeeded');
    this.snapshotDuration = snapshotGauge('github_mirror_snapshot_duration_seconds', 'Duration of the last successful snapshot');
    this.snapshotEntries = snapshotGauge('github_mirror_snapshot_entries', 'Entries in the last successful snapshot');
    this.snapshotBytes = snapshotGauge('github_mirror_snapshot_bytes', 'Size of the last successful snapshot in bytes');
    this.snapshots = new Counter({
      name: 'github_mirror_snapshot_total',
      help: 'Snapshots attempted, by outcome (ok, failed, skipped, corrupt)',
      labelNames: ['store', 'outcome'],
      registers,
    });
    this.restoreLastSuccess = snapshotGauge('github_mirror_restore_last_success_timestamp_seconds', 'Epoch seconds when the last restore from a snapshot succeeded');
    this.restoreDuration = snapshotGauge('github_mirror_restore_duration_seconds', 'Duration of the last successful restore');
    this.restoreEntries = snapshotGauge('github_mirror_restore_entries', 'Entries written into the cache by the last successful restore');
    this.restoreBytes = snapshotGauge('github_mirror_restore_bytes', 'Bytes read from the snapshot by the last successful restore');
    this.restores = new Counter({
      name: 'github_mirror_restore_total',
      help: 'Restores from a snapshot, by outcome (ok, failed, skipped, corrupt)',
      labelNames: ['store', 'outcome'],
      registers,
    });
    this.restoreInProgress = snapshotGauge('github_mirror_restore_in_progress', '1 while a restore from a snapshot is running');
    if (options.snapshot !== undefined && options.snapshot.intervalSeconds > 0) {
      snapshotGauge('github_mirror_snapshot_interval_seconds', 'Configured time between two snapshots (present only when snapshots are on)').set(
        { store: this.bounded('store', options.snapshot.store) },
        options.snapshot.intervalSeconds,
      );
    }

    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named *_total break the exposition conventions (promtool check metrics); each one is the sum
      // of its labelled twin (nodejs_active_handles{type}, ...), which stays.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
    this.subscribe(bus);
  }

  /** The text exposition of the registry, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops listening and empties the registry. */
  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.registry.clear();
    this.requestLatency.reset();
    this.cacheOperation.reset();
    this.upstreamLatency.reset();
    this.upstreamRequests.reset();
    this.requestChildren.clear();
    this.cacheOperationChildren.clear();
    this.upstreamChildren.clear();
    this.quotaSavedChildren.clear();
  }

  private subscribe(bus: EventSubscriber): void {
    const on = <N extends DomainEventName>(name: N, listener: DomainEventListener<N>) => this.unsubscribe.push(bus.on(name, listener));
    on(EventName.httpCompleted, (event) => this.onHttpCompleted(event));
    on(EventName.cacheOperation, (event) => this.onCacheOperation(event));
    on(EventName.upstreamCalled, (event) => this.onUpstreamCalled(event));
    on(EventName.resourceResolved, (event) => this.onResourceResolved(event));
    on(EventName.coalesced, (event) => {
      this.coalesced.inc({ scope: event.scope === 'shared' ? 'shared' : 'local' });
    });
    on(EventName.cacheError, (event) => {
      const e = event;
      this.cacheErrors.inc({ backend: this.bounded('backend', e.backend), operation: this.bounded('operation', e.operation) });
    });
    on(EventName.cacheCorrupt, (event) => {
      this.cacheCorrupt.inc({ backend: this.bounded('backend', event.backend) });
    });
    on(EventName.crossCredentialRevalidation, (event) => this.onCrossCredential(event));
    on(EventName.breakerChanged, (event) => this.onBreakerChanged(event));
    on(EventName.governorDecided, (event) => this.governor.onDecided(event));
    on(EventName.governorQueue, (event) => this.governor.onQueue(event));
    on(EventName.governorHold, (event) => this.governor.onHold(event));
    on(EventName.backendChanged, (event) => {
      this.lastBackend = this.bounded('backend', event.backend);
    });
    on(EventName.snapshotCompleted, (event) => this.onSnapshot(event));
    on(EventName.snapshotFailed, (event) => this.onSnapshot(event));
    on(EventName.restoreCompleted, (event) => this.onRestore(event));
    on(EventName.restoreProgress, (event) => {
      this.restoreInProgress.set({ store: this.bounded('store', event.store) }, 1);
    });
  }

  private onHttpCompleted(e: HttpCompletedEvent): void {
    let child = this.requestChildren.get(e.outcome, e.status, e.method);
    if (child === undefined) {
      child = this.requestLatency.child({ cache: OUTCOME_VALUES.has(e.outcome) ? e.outcome : 'OTHER', status: statusLabel(e.status), method: methodLabel(e.method) });
      this.requestChildren.set(e.outcome, e.status, e.method, child);
    }
    child.observe(e.durationMs / 1000);
  }

  private onCacheOperation(e: CacheOperationEvent): void {
    const result = !e.ok ? 'error' : e.operation === 'lookup' ? (e.found ? 'hit' : 'miss') : 'ok';
    let child = this.cacheOperationChildren.get(e.backend, e.operation, result);
    if (child === undefined) {
      child = this.cacheOperation.child({ backend: this.bounded('backend', e.backend), operation: this.bounded('operation', e.operation), result });
      this.cacheOperationChildren.set(e.backend, e.operation, result, child);
    }
    child.observe(e.durationMs / 1000);
  }

  private onUpstreamCalled(e: UpstreamCalledEvent): void {
    const result = UPSTREAM_RESULTS.has(e.result) ? e.result : 'other';
    const statusClass = e.status === undefined ? 'none' : statusClassLabel(e.status);
    const quota = e.countedAgainstQuota ? 'counted' : 'free';
    const client = this.clients.labelFor(e.userAgent);
    const key = `${result} ${statusClass} ${quota} ${client}`;
    let child = this.upstreamChildren.get(key);
    if (child === undefined) {
      child = {
        latency: this.upstreamLatency.child({ result, status_class: statusClass }),
        count: this.upstreamRequests.child({ result, status_class: statusClass, quota, client }),
      };
      if (this.upstreamChildren.size >= MAX_CHILDREN) this.upstreamChildren.clear();
      this.upstreamChildren.set(key, child);
    }
    child.latency.observe(Math.max(0, e.durationMs) / 1000);
    child.count.inc();
    const remaining = e.rateLimitRemaining;
    if (remaining !== undefined && Number.isFinite(remaining) && remaining >= 0) {
      const resource = e.rateLimitResource === undefined ? 'unknown' : RATE_LIMIT_RESOURCES.has(e.rateLimitResource) ? e.rateLimitResource : 'other';
      let window = this.rateLimitWindows.get(resource);
      if (window === undefined) {
        window = new SlidingMinimum(this.rateLimitWindowMs, 30, this.now);
        this.rateLimitWindows.set(resource, window);
      }
      window.record(remaining);
    }
  }

  private onCrossCredential(e: CrossCredentialRevalidationEvent): void {
    // an attempt that offered a stored body is "shared" (the empty-list guess may ride along)
    const kind = e.candidates > (e.guess ? 1 : 0) ? 'shared' : 'guess';
    this.crossCredential.inc({ kind, result: CROSS_CREDENTIAL_RESULTS.has(e.result) ? e.result : 'error' });
    if (e.quotaSaved > 0) this.crossCredentialSaved.inc(e.quotaSaved);
  }

  private onResourceResolved(e: ResourceResolvedEvent): void {
    const reason = e.quotaSaved;
    if (reason !== 'fresh' && reason !== 'not_modified' && reason !== 'coalesced') return;
    const client = this.clients.labelFor(e.userAgent);
    let children = this.quotaSavedChildren.get(client);
    if (children === undefined) {
      children = {};
      this.quotaSavedChildren.set(client, children);
    }
    // a reason's series appears with its first count, as a prom-client counter's would (kept after it)
    (children[reason] ??= this.quotaSaved.child({ client, reason })).inc();
  }

  private onBreakerChanged(e: BreakerChangedEvent): void {
    const breaker = this.bounded('breaker', e.breaker);
    for (const state of BREAKER_STATES) this.breakerState.set({ breaker, state }, e.state === state ? 1 : 0);
  }

  private onSnapshot(e: SnapshotEvent): void {
    const store = this.bounded('store', e.store);
    const outcome = e.name === EventName.snapshotFailed && e.outcome === 'ok' ? 'failed' : snapshotOutcome(e.outcome);
    this.snapshots.inc({ store, outcome });
    if (e.name === EventName.snapshotCompleted && outcome === 'ok') {
      this.snapshotLastSuccess.set({ store }, this.now() / 1000);
      this.snapshotDuration.set({ store }, e.durationMs / 1000);
      this.snapshotEntries.set({ store }, e.entries);
      this.snapshotBytes.set({ store }, e.bytes);
    }
  }

  private onRestore(e: SnapshotEvent): void {
    const store = this.bounded('store', e.store);
    const outcome = snapshotOutcome(e.outcome);
    this.restoreInProgress.set({ store }, 0);
    this.restores.inc({ store, outcome });
    if (outcome === 'ok') {
      this.restoreLastSuccess.set({ store }, this.now() / 1000);
      this.restoreDuration.set({ store }, e.durationMs / 1000);
      this.restoreEntries.set({ store }, e.restored ?? e.entries);
      this.restoreBytes.set({ store }, e.bytes);
    }
  }

  /**
   * A name chosen by the code (backend, breaker, store, operation) as a label value: lower-case word
   * characters only, at most MAX_NAMES distinct values per kind; anything else is "other".
   */
  private bounded(kind: string, value: string): string {
    let seen = this.names.get(kind);
    if (seen === undefined) {
      seen = new Set();
      this.names.set(kind, seen);
    }
    if (seen.has(value)) return value;
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(value) || seen.size >= MAX_NAMES) return 'other';
    seen.add(value);
    return value;
  }
}

/** Reads the stats of a cache backend when it has them (memory, redis), for `PrometheusMetricsOptions.cacheStats`. */
export function cacheStatsOf(backend: unknown): (() => Promise<CacheStats>) | undefined {
  if (typeof backend !== 'object' || backend === null) return undefined;
  const candidate = backend as Partial<CacheStatsPort>;
  if (typeof candidate.stats !== 'function') return undefined;
  return () => (candidate as CacheStatsPort).stats();
}

/** Resolves to undefined when `promise` rejects or takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}
