/**
 * The metrics adapter on its own: events in, exposition out. A real event bus, a fake clock, no server.
 */
import test from 'ava';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { LATENCY_BUCKETS, PrometheusMetrics, cacheStatsOf, type PrometheusMetricsOptions } from '../../src/adapters/metrics/prometheus-metrics.adapter.js';
import { FastHistogram } from '../../src/adapters/metrics/fast-histogram.js';
import { SlidingMinimum } from '../../src/adapters/metrics/sliding-minimum.js';
import { ReadinessTracker } from '../../src/adapters/readiness/readiness-tracker.adapter.js';
import type { DomainEvent } from '../../src/domain/events/events.js';
import { FakeClock } from '../support/fakes.js';
import { parseMetrics, select, total, valueOf, type Sample } from '../support/prometheus-harness.js';

function makeSut(options: PrometheusMetricsOptions = {}) {
  const bus = new EventEmitter2Bus((error) => {
    throw error;
  });
  const clock = new FakeClock();
  const metrics = new PrometheusMetrics(bus, { now: () => clock.now(), ...options });
  const emit = (event: Record<string, unknown>) => bus.emit(event as unknown as DomainEvent);
  const scrape = async (): Promise<Sample[]> => parseMetrics((await metrics.render()).body);
  return { bus, clock, metrics, emit, scrape };
}

const completed = (outcome: string, status: number, durationMs: number, method = 'GET') => ({
  name: 'http.request.completed',
  outcome,
  status,
  method,
  durationMs,
});

test('requests: one event feeds request_latency_seconds and http_request_total with the same labels', async (t) => {
  const { emit, scrape, metrics } = makeSut();
  emit(completed('ONLINE_HIT', 200, 0.8));
  emit(completed('ONLINE_HIT', 200, 0.3));
  emit(completed('ONLINE_MISS', 200, 1500));
  emit(completed('OFFLINE_MISS', 504, 0.2, 'POST'));
  const s = await scrape();
  t.is(valueOf(s, 'http_request_total', { cache: 'ONLINE_HIT', status: '200', method: 'GET' }), 2);
  t.is(valueOf(s, 'http_request_total', { cache: 'ONLINE_MISS', status: '200', method: 'GET' }), 1);
  t.is(valueOf(s, 'http_request_total', { cache: 'OFFLINE_MISS', status: '504', method: 'POST' }), 1);
  t.is(valueOf(s, 'request_latency_seconds_count', { cache: 'ONLINE_HIT' }), 2);
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_HIT', le: '0.0003' }), 1, 'le is inclusive');
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_HIT', le: '0.00075' }), 1);
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_HIT', le: '0.001' }), 2);
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_MISS', le: '1' }), 0);
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_MISS', le: '1.5' }), 1);
  t.is(valueOf(s, 'request_latency_seconds_bucket', { cache: 'ONLINE_MISS', le: '+Inf' }), 1);
  t.true(Math.abs((valueOf(s, 'request_latency_seconds_sum', { cache: 'ONLINE_HIT' }) ?? 0) - 0.0011) < 1e-12);
  const text = (await metrics.render()).body;
  t.regex(text, /# TYPE request_latency_seconds histogram/);
  t.regex(text, /# TYPE http_request_total counter/);
});

test('requests: unknown outcomes, methods and statuses become bounded label values', async (t) => {
  const { emit, scrape } = makeSut();
  emit(completed('token ghp_0123456789abcdef0123', 200, 1));
  emit(completed('ONLINE_HIT', 200, 1, 'BREW'));
  emit(completed('ONLINE_HIT', 1000, 1));
  emit(completed('NONE', 404, 1));
  const s = await scrape();
  t.is(valueOf(s, 'http_request_total', { cache: 'OTHER', status: '200', method: 'GET' }), 1);
  t.is(valueOf(s, 'http_request_total', { cache: 'ONLINE_HIT', method: 'OTHER' }), 1);
  t.is(valueOf(s, 'http_request_total', { cache: 'ONLINE_HIT', status: 'other' }), 1);
  t.is(valueOf(s, 'http_request_total', { cache: 'NONE', status: '404' }), 1);
  t.false(s.some((x) => Object.values(x.labels).some((v) => v.includes('ghp_'))));
});

test('the fast histogram exposes the same buckets, sum and count as prom-client’s Histogram', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 200 }), async (values) => {
      const fastRegistry = new Registry();
      const fast = new FastHistogram({ name: 'x_seconds', help: 'x', labelNames: ['a'], buckets: LATENCY_BUCKETS, registers: [fastRegistry] });
      const slowRegistry = new Registry();
      const slow = new Histogram({ name: 'x_seconds', help: 'x', labelNames: ['a'], buckets: LATENCY_BUCKETS, registers: [slowRegistry] });
      const child = fast.child({ a: 'v' });
      for (const v of values) {
        child.observe(v);
        slow.observe({ a: 'v' }, v);
      }
      if (values.length === 0) slow.zero({ a: 'v' });
      const key = (x: Sample) => `${x.name}${JSON.stringify(Object.entries(x.labels).sort())}`;
      const norm = (samples: Sample[]) => new Map(samples.map((x) => [key(x), x.name.endsWith('_sum') ? Math.round(x.value * 1e6) : x.value]));
      const a = norm(parseMetrics(await fastRegistry.metrics()));
      const b = norm(parseMetrics(await slowRegistry.metrics()));
      t.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
    }),
    { numRuns: 50 },
  );
});

test('cache operations: per backend, operation and result (hit/miss/ok/error)', async (t) => {
  const { emit, scrape } = makeSut();
  emit({ name: 'cache.operation', backend: 'memory', operation: 'lookup', durationMs: 0.004, ok: true, found: true });
  emit({ name: 'cache.operation', backend: 'memory', operation: 'lookup', durationMs: 0.004, ok: true, found: false });
  emit({ name: 'cache.operation', backend: 'redis', operation: 'lookup', durationMs: 0.9, ok: true, found: true });
  emit({ name: 'cache.operation', backend: 'redis', operation: 'store', durationMs: 1.2, ok: true });
  emit({ name: 'cache.operation', backend: 'redis', operation: 'store', durationMs: 200, ok: false });
  emit({ name: 'cache.error', backend: 'redis', operation: 'store', code: 'CACHE_UNAVAILABLE', message: 'down' });
  emit({ name: 'cache.corrupt', backend: 'redis', reason: 'bad json' });
  const s = await scrape();
  const count = (labels: Record<string, string>) => valueOf(s, 'github_mirror_cache_operation_seconds_count', labels);
  t.is(count({ backend: 'memory', operation: 'lookup', result: 'hit' }), 1);
  t.is(count({ backend: 'memory', operation: 'lookup', result: 'miss' }), 1);
  t.is(count({ backend: 'redis', operation: 'lookup', result: 'hit' }), 1);
  t.is(count({ backend: 'redis', operation: 'store', result: 'ok' }), 1);
  t.is(count({ backend: 'redis', operation: 'store', result: 'error' }), 1);
  t.is(valueOf(s, 'github_mirror_cache_operation_seconds_bucket', { backend: 'memory', result: 'hit', le: '0.000005' }), 1, 'microsecond buckets');
  t.is(valueOf(s, 'github_mirror_cache_errors_total', { backend: 'redis', operation: 'store' }), 1);
  t.is(valueOf(s, 'github_mirror_cache_corrupt_total', { backend: 'redis' }), 1);
});

test('upstream calls: latency and count by result, status class and quota', async (t) => {
  const { emit, scrape } = makeSut();
  emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 120 });
  emit({ name: 'upstream.called', result: 'ok', status: 304, countedAgainstQuota: false, conditional: true, durationMs: 80 });
  emit({ name: 'upstream.called', result: 'ok', status: 304, countedAgainstQuota: false, conditional: true, durationMs: 90 });
  emit({ name: 'upstream.called', result: 'timeout', countedAgainstQuota: false, conditional: true, durationMs: 10_000 });
  emit({ name: 'upstream.called', result: 'offline', countedAgainstQuota: false, conditional: false, durationMs: 0 });
  const s = await scrape();
  t.is(valueOf(s, 'github_mirror_upstream_requests_total', { result: 'ok', status_class: '2xx', quota: 'counted' }), 1);
  t.is(valueOf(s, 'github_mirror_upstream_requests_total', { result: 'ok', status_class: '3xx', quota: 'free' }), 2);
  t.is(valueOf(s, 'github_mirror_upstream_requests_total', { result: 'timeout', status_class: 'none', quota: 'free' }), 1);
  t.is(valueOf(s, 'github_mirror_upstream_requests_total', { result: 'offline', status_class: 'none', quota: 'free' }), 1);
  t.is(valueOf(s, 'github_mirror_upstream_request_seconds_count', { result: 'ok', status_class: '3xx' }), 2);
  t.is(valueOf(s, 'github_mirror_upstream_request_seconds_bucket', { result: 'timeout', le: '7.5' }), 0);
  t.is(valueOf(s, 'github_mirror_upstream_request_seconds_bucket', { result: 'timeout', le: '10' }), 1);
});

test('rate limit: the lowest remaining of the last 5 minutes, per resource, absent when nothing is in the window', async (t) => {
  const { emit, scrape, clock } = makeSut();
  const call = (remaining: number, resource?: string) =>
    emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 1, rateLimitRemaining: remaining, ...(resource ? { rateLimitResource: resource } : {}) });
  t.is(valueOf(await scrape(), 'github_mirror_rate_limit_remaining_min'), undefined, 'absent before any call');
  call(4000, 'core');
  clock.advance(60_000);
  call(120, 'core');
  clock.advance(60_000);
  call(4500, 'core');
  call(25, 'search');
  call(3000);
  call(10, 'some_future_resource');
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_rate_limit_remaining_min', { resource: 'core' }), 120);
  t.is(valueOf(s, 'github_mirror_rate_limit_remaining_min', { resource: 'search' }), 25);
  t.is(valueOf(s, 'github_mirror_rate_limit_remaining_min', { resource: 'unknown' }), 3000);
  t.is(valueOf(s, 'github_mirror_rate_limit_remaining_min', { resource: 'other' }), 10);
  clock.advance(4 * 60_000); // the 120 is 6 minutes old, the 4500 four
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_rate_limit_remaining_min', { resource: 'core' }), 4500);
  clock.advance(2 * 60_000);
  s = await scrape();
  t.deepEqual(select(s, 'github_mirror_rate_limit_remaining_min'), [], 'the window is empty again');
});

test('SlidingMinimum forgets a value between window − slot and window after it was recorded', (t) => {
  let now = 1_000_000;
  const window = new SlidingMinimum(300_000, 30, () => now);
  window.record(7);
  now += 289_999;
  t.is(window.minimum(), 7);
  now += 10_001;
  t.is(window.minimum(), undefined);
  window.record(9);
  window.record(3);
  window.record(5);
  t.is(window.minimum(), 3);
});

test('breakers: 1 for the current state, 0 for the others, per breaker', async (t) => {
  const { emit, scrape } = makeSut();
  emit({ name: 'breaker.changed', breaker: 'upstream', state: 'open' });
  emit({ name: 'breaker.changed', breaker: 'cache', state: 'half_open' });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'open' }), 1);
  t.is(valueOf(s, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'closed' }), 0);
  t.is(valueOf(s, 'github_mirror_breaker_state', { breaker: 'cache', state: 'half_open' }), 1);
  emit({ name: 'breaker.changed', breaker: 'upstream', state: 'closed' });
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'open' }), 0);
  t.is(valueOf(s, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'closed' }), 1);
  t.is(total(s, 'github_mirror_breaker_state'), 2, 'one current state per breaker');
});

test('cache backend: the active one is 1, the others listed are 0; read at scrape time', async (t) => {
  let active = 'redis';
  const { scrape } = makeSut({ activeBackend: () => active, backends: ['redis', 'memory'] });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'redis' }), 1);
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'memory' }), 0);
  active = 'memory';
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'redis' }), 0);
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'memory' }), 1);
});

test('cache backend without a reader: the last cache.backend_changed event', async (t) => {
  const { emit, scrape } = makeSut({ backends: ['redis', 'memory'] });
  t.is(total(await scrape(), 'github_mirror_cache_backend'), 0);
  emit({ name: 'cache.backend_changed', backend: 'memory' });
  const s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'memory' }), 1);
  t.is(valueOf(s, 'github_mirror_cache_backend', { backend: 'redis' }), 0);
});

test('cache size: read from the stats function at scrape time; absent when it fails or hangs', async (t) => {
  let stats: () => Promise<{ entries: number; bytes: number }> = () => Promise.resolve({ entries: 12, bytes: 3456 });
  let calls = 0;
  const { scrape } = makeSut({
    cacheStats: () => {
      calls++;
      return stats();
    },
    cacheStatsTimeoutMs: 50,
  });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_size'), 3456);
  t.is(valueOf(s, 'github_mirror_cached_objects'), 12);
  t.is(calls, 1, 'one stats call serves both gauges');
  stats = () => Promise.reject(new Error('redis down'));
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_size'), undefined);
  t.is(valueOf(s, 'github_mirror_cached_objects'), undefined);
  stats = () => new Promise(() => undefined);
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_cache_size'), undefined);
});

test('shared layout: bodies and credential entries from the same stats call; absent without the layout', async (t) => {
  let calls = 0;
  let layout: { entries: number; bodies: number; estimated: boolean } | undefined = { entries: 20_000, bodies: 200, estimated: false };
  const { scrape } = makeSut({
    cacheStats: () => {
      calls++;
      return Promise.resolve(layout === undefined ? { entries: 5, bytes: 10 } : { entries: 20_201, bytes: 999, layout });
    },
  });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_cached_bodies'), 200);
  t.is(valueOf(s, 'github_mirror_cached_credential_entries'), 20_000);
  t.is(valueOf(s, 'github_mirror_cached_objects'), 20_201);
  t.is(calls, 1, 'one stats call serves every gauge');
  layout = undefined;
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_cached_bodies'), undefined);
  t.is(valueOf(s, 'github_mirror_cached_credential_entries'), undefined);
});

test('cross-credential revalidations by kind and result (all present from the start) and the quota they saved', async (t) => {
  const { emit, scrape } = makeSut();
  let s = await scrape();
  for (const kind of ['shared', 'guess']) {
    for (const result of ['304', '200', 'error']) t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind, result }), 0);
  }
  const event = (result: string, quotaSaved: number, candidates = 2, guess = false) => ({ name: 'cache.cross_credential_revalidation', result, candidates, guess, quotaSaved });
  emit(event('304', 1));
  emit(event('304', 1));
  emit(event('200', 0));
  emit(event('error', 0));
  emit(event('304', 1, 1, true));
  emit(event('200', 0, 1, true));
  emit(event('200', 0, 1, true));
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind: 'shared', result: '304' }), 2);
  t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind: 'shared', result: '200' }), 1);
  t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind: 'shared', result: 'error' }), 1);
  t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind: 'guess', result: '304' }), 1);
  t.is(valueOf(s, 'github_mirror_cross_credential_revalidations_total', { kind: 'guess', result: '200' }), 2);
  t.is(valueOf(s, 'github_mirror_cross_credential_quota_saved_total'), 3);
});

test('cacheStatsOf: a function for backends with stats(), undefined otherwise', async (t) => {
  t.is(cacheStatsOf({ backend: 'x' }), undefined);
  t.is(cacheStatsOf(undefined), undefined);
  const read = cacheStatsOf({ stats: () => Promise.resolve({ entries: 1, bytes: 2 }) });
  t.deepEqual(await read?.(), { entries: 1, bytes: 2 });
});

test('snapshots and restores: last success, size, duration, outcomes, progress', async (t) => {
  const { emit, scrape, clock } = makeSut({ snapshot: { store: 'file', intervalSeconds: 300 } });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_snapshot_interval_seconds', { store: 'file' }), 300);
  t.is(valueOf(s, 'github_mirror_snapshot_last_success_timestamp_seconds'), undefined, 'absent until a snapshot succeeds');
  emit({ name: 'snapshot.completed', store: 'file', entries: 0, bytes: 0, durationMs: 1, outcome: 'skipped', reason: 'cache is empty' });
  emit({ name: 'snapshot.completed', store: 'file', entries: 42, bytes: 9000, durationMs: 1500, outcome: 'ok', snapshotId: 's1' });
  emit({ name: 'snapshot.failed', store: 'file', entries: 0, bytes: 0, durationMs: 3, outcome: 'failed', reason: 'disk full' });
  emit({ name: 'snapshot.restore_progress', store: 'file', entries: 10, bytes: 100, durationMs: 50, outcome: 'in_progress', total: 42 });
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_snapshot_last_success_timestamp_seconds', { store: 'file' }), clock.now() / 1000);
  t.is(valueOf(s, 'github_mirror_snapshot_entries', { store: 'file' }), 42);
  t.is(valueOf(s, 'github_mirror_snapshot_bytes', { store: 'file' }), 9000);
  t.is(valueOf(s, 'github_mirror_snapshot_duration_seconds', { store: 'file' }), 1.5);
  t.is(valueOf(s, 'github_mirror_snapshot_total', { outcome: 'ok' }), 1);
  t.is(valueOf(s, 'github_mirror_snapshot_total', { outcome: 'skipped' }), 1);
  t.is(valueOf(s, 'github_mirror_snapshot_total', { outcome: 'failed' }), 1);
  t.is(valueOf(s, 'github_mirror_restore_in_progress', { store: 'file' }), 1);
  clock.advance(5000);
  emit({ name: 'snapshot.restored', store: 'file', entries: 0, bytes: 0, durationMs: 10, outcome: 'corrupt', reason: 'bad checksum' });
  emit({ name: 'snapshot.restored', store: 'file', entries: 42, bytes: 9000, durationMs: 2500, outcome: 'ok', restored: 40, expired: 2 });
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_restore_in_progress', { store: 'file' }), 0);
  t.is(valueOf(s, 'github_mirror_restore_total', { outcome: 'corrupt' }), 1);
  t.is(valueOf(s, 'github_mirror_restore_total', { outcome: 'ok' }), 1);
  t.is(valueOf(s, 'github_mirror_restore_entries', { store: 'file' }), 40, 'entries written, not read');
  t.is(valueOf(s, 'github_mirror_restore_last_success_timestamp_seconds', { store: 'file' }), clock.now() / 1000);
  t.is(valueOf(s, 'github_mirror_restore_duration_seconds', { store: 'file' }), 2.5);
});

test('no snapshot interval gauge when snapshots are off', async (t) => {
  const { scrape } = makeSut();
  t.deepEqual(select(await scrape(), 'github_mirror_snapshot_interval_seconds'), []);
});

test('coalesced requests by scope', async (t) => {
  const { emit, scrape } = makeSut();
  emit({ name: 'request.coalesced', scope: 'local' });
  emit({ name: 'request.coalesced', scope: 'local' });
  emit({ name: 'request.coalesced', scope: 'shared' });
  const s = await scrape();
  t.is(valueOf(s, 'github_mirror_coalesced_requests_total', { scope: 'local' }), 2);
  t.is(valueOf(s, 'github_mirror_coalesced_requests_total', { scope: 'shared' }), 1);
});

test('free-form names (backend, breaker, store) are bounded: odd or too many values become "other"', async (t) => {
  const { emit, scrape } = makeSut();
  emit({ name: 'breaker.changed', breaker: 'Bearer ghp_secret0123456789', state: 'open' });
  emit({ name: 'cache.corrupt', backend: 'https://redis.example/x', reason: 'x' });
  for (let i = 0; i < 40; i++) emit({ name: 'breaker.changed', breaker: `b${i}`, state: 'open' });
  const s = await scrape();
  const breakers = new Set(select(s, 'github_mirror_breaker_state').map((x) => x.labels['breaker']));
  t.true(breakers.has('other'));
  t.true(breakers.size <= 17);
  t.is(valueOf(s, 'github_mirror_cache_corrupt_total', { backend: 'other' }), 1);
  for (const sample of s) for (const value of Object.values(sample.labels)) t.false(/ghp_|\/|:\/\//.test(value), `${sample.name} ${value}`);
});

test('process metrics go to the adapter’s registry, and the *_total gauges are left out', async (t) => {
  const { scrape, metrics } = makeSut({ processMetrics: true });
  const s = await scrape();
  t.true(select(s, 'process_cpu_user_seconds_total').length === 1);
  t.true(select(s, 'nodejs_eventloop_lag_p99_seconds').length === 1);
  t.deepEqual(select(s, 'nodejs_active_handles_total'), []);
  t.truthy(metrics.registry.getSingleMetric('nodejs_heap_size_used_bytes'));
});

test('close() stops listening and empties the registry', async (t) => {
  const { emit, metrics } = makeSut();
  emit(completed('ONLINE_HIT', 200, 1));
  metrics.close();
  emit(completed('ONLINE_HIT', 200, 1));
  t.is((await metrics.render()).body.trim(), '');
});

test('status tracker: breakers, upstream health, restore progress', (t) => {
  const bus = new EventEmitter2Bus();
  const clock = new FakeClock();
  const status = new ReadinessTracker(bus, () => clock.now());
  const emit = (event: Record<string, unknown>) => bus.emit(event as unknown as DomainEvent);
  t.deepEqual(status.upstream(), { state: 'unknown', consecutiveFailures: 0 });
  t.deepEqual(status.restore(), { state: 'none' });
  emit({ name: 'upstream.called', result: 'ok', status: 304, countedAgainstQuota: false, conditional: true, durationMs: 5 });
  clock.advance(2000);
  emit({ name: 'upstream.called', result: 'ok', status: 502, countedAgainstQuota: true, conditional: true, durationMs: 5 });
  t.like(status.upstream(), { state: 'erroring', lastStatus: 502, consecutiveFailures: 1, lastOkSecondsAgo: 2, lastCallSecondsAgo: 0 });
  emit({ name: 'upstream.called', result: 'connection_error', countedAgainstQuota: false, conditional: true, durationMs: 5 });
  t.like(status.upstream(), { state: 'unreachable', consecutiveFailures: 2 });
  clock.advance(1000);
  // kept back by the governor: nothing was sent, so nothing changes (not even the last call's time)
  emit({ name: 'upstream.called', result: 'refused', countedAgainstQuota: false, conditional: true, durationMs: 0 });
  t.like(status.upstream(), { state: 'unreachable', consecutiveFailures: 2, lastCallSecondsAgo: 1 });
  emit({ name: 'breaker.changed', breaker: 'upstream', state: 'open' });
  emit({ name: 'upstream.called', result: 'offline', countedAgainstQuota: false, conditional: true, durationMs: 0 });
  t.like(status.upstream(), { state: 'offline', consecutiveFailures: 3 });
  t.deepEqual(status.breakers(), { upstream: 'open' });
  emit({ name: 'snapshot.restore_progress', store: 's3', entries: 10, bytes: 100, durationMs: 500, outcome: 'in_progress', total: 40, restored: 9 });
  t.deepEqual(status.restore(), { state: 'in_progress', store: 's3', entries: 10, total: 40, restored: 9, bytes: 100, durationSeconds: 0.5 });
  emit({ name: 'snapshot.restored', store: 's3', entries: 40, bytes: 400, durationMs: 1500, outcome: 'ok', total: 40, restored: 38 });
  clock.advance(3000);
  t.like(status.restore(), { state: 'ok', entries: 40, restored: 38, finishedSecondsAgo: 3 });
  status.close();
  emit({ name: 'breaker.changed', breaker: 'upstream', state: 'closed' });
  t.deepEqual(status.breakers(), { upstream: 'open' }, 'no longer listening');
});

test('governor: hold_longest_seconds is how long the longest current hold has lasted; a hold right after the last one continues it', async (t) => {
  const { emit, scrape, clock } = makeSut();
  const hold = (partition: string, holdMs: number) => emit({ name: 'governor.hold', partition, holdMs, source: 'answer' });
  t.is(valueOf(await scrape(), 'github_mirror_governor_hold_longest_seconds'), 0);
  hold('p1', 300_000);
  clock.advance(120_000);
  hold('p2', 60_000);
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_governor_holds_active'), 2);
  t.is(valueOf(s, 'github_mirror_governor_hold_longest_seconds'), 120);
  clock.advance(200_000); // p1 ended 20 s ago, p2 40 s before that
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_governor_holds_active'), 0);
  t.is(valueOf(s, 'github_mirror_governor_hold_longest_seconds'), 0);
  hold('p1', 600_000); // GitHub refused again at the first call after the wait
  clock.advance(60_000);
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_governor_holds_active'), 1);
  t.is(valueOf(s, 'github_mirror_governor_hold_longest_seconds'), 380, 'one hold since the first refusal');
  clock.advance(600_000);
  hold('p1', 60_000); // 60 s after the last hold ended: a new one
  t.is(valueOf(await scrape(), 'github_mirror_governor_hold_longest_seconds'), 0);
});

test('quota saved: by client and reason, only for answers that spent no quota', async (t) => {
  const { emit, scrape } = makeSut({ clientLabels: { admitAfter: 1 } });
  const resolved = (quotaSaved: string | undefined, userAgent?: string) =>
    emit({ name: 'resource.resolved', outcome: 'ONLINE_HIT', status: 200, method: 'GET', collapsed: false, ...(quotaSaved ? { quotaSaved } : {}), ...(userAgent ? { userAgent } : {}) });
  resolved('not_modified', 'octokit-rest.js/20.0.2');
  resolved('not_modified', 'octokit-rest.js/19');
  resolved('fresh', 'PyGithub/2.1');
  resolved('coalesced');
  resolved(undefined, 'curl/8');
  resolved('bogus', 'curl/8');
  emit({ name: 'upstream.called', result: 'ok', status: 200, countedAgainstQuota: true, conditional: false, durationMs: 1, userAgent: 'gh/2.40' });
  const s = await scrape();
  t.is(valueOf(s, 'github_mirror_quota_saved_total', { client: 'octokit-rest.js', reason: 'not_modified' }), 2);
  t.is(valueOf(s, 'github_mirror_quota_saved_total', { client: 'PyGithub', reason: 'fresh' }), 1);
  t.is(valueOf(s, 'github_mirror_quota_saved_total', { client: 'none', reason: 'coalesced' }), 1);
  t.is(total(s, 'github_mirror_quota_saved_total'), 4);
  // only the reasons counted have a series: no client shows reasons at 0 it never saved by
  t.deepEqual(
    select(s, 'github_mirror_quota_saved_total').map((sample) => `${sample.labels['client']} ${sample.labels['reason']}`).sort(),
    ['PyGithub fresh', 'none coalesced', 'octokit-rest.js not_modified'],
  );
  t.is(valueOf(s, 'github_mirror_upstream_requests_total', { client: 'gh', quota: 'counted' }), 1);
});

test('the Redis near cache: its counters and size read at scrape time; absent without it', async (t) => {
  let figures: { hits: number; fills: number; voided: number; invalidations: number; flushes: number; evictions: number; armed: boolean; entries: number; bytes: number } | undefined = {
    hits: 41,
    fills: 7,
    voided: 1,
    invalidations: 5,
    flushes: 2,
    evictions: 3,
    armed: true,
    entries: 4,
    bytes: 2048,
  };
  const { scrape } = makeSut({ nearCache: () => figures });
  let s = await scrape();
  t.is(valueOf(s, 'github_mirror_near_cache_hits_total'), 41);
  t.is(valueOf(s, 'github_mirror_near_cache_events_total', { event: 'fill' }), 7);
  t.is(valueOf(s, 'github_mirror_near_cache_events_total', { event: 'voided' }), 1);
  t.is(valueOf(s, 'github_mirror_near_cache_events_total', { event: 'eviction' }), 3);
  t.is(valueOf(s, 'github_mirror_near_cache_bytes'), 2048);
  t.is(valueOf(s, 'github_mirror_near_cache_entries'), 4);
  t.is(valueOf(s, 'github_mirror_near_cache_armed'), 1);
  figures = { ...figures, hits: 50, armed: false, entries: 0, bytes: 0 };
  s = await scrape();
  t.is(valueOf(s, 'github_mirror_near_cache_hits_total'), 50);
  t.is(valueOf(s, 'github_mirror_near_cache_armed'), 0);
  const { scrape: without } = makeSut();
  t.is(valueOf(await without(), 'github_mirror_near_cache_hits_total'), undefined);
});
