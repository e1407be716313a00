/**
 * The upstream governor end to end (issue 15): two replicas on one real Redis in front of the fake
 * GitHub. Concurrency per token stays under maxConcurrent fleet-wide, writes are spaced, a hold learnt
 * by one replica holds the token on the other (also when the other admits it from a lease: the hold
 * message ends the lease), a call kept back too long is refused (or served from
 * the cache), and a Redis outage moves the counting to memory without failing a request.
 */
import test from 'ava';
import type { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { waitFor, type RedisProcess } from '../support/redis-harness.js';
import { RedisStack } from '../support/redis-stack.js';
import { parseMetrics, total, valueOf } from '../support/prometheus-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const MAX_CONCURRENT = 20;
/** Small, but well above the jitter of a loaded test machine (the governor adds a tenth as headroom). */
const SPACING_MS = 200;

let stack: RedisStack | undefined;
let github: FakeGitHub;
let redis: RedisProcess;
let a: Mirror;
let b: Mirror;

const settings = {
  // generous on a loaded machine: a Redis that times out sends each replica to its in-memory counters,
  // which bound a credential per replica, not fleet-wide (docs/resilience.md) — not what this file tests
  MIRROR_REDIS_COMMAND_TIMEOUT_MS: '2000',
  MIRROR_CACHE_BREAKER_TIMEOUT_MS: '2500',
  MIRROR_CACHE_BREAKER_RESET_TIMEOUT_MS: '500',
  MIRROR_UPSTREAM_TIMEOUT_MS: '10000',
  MIRROR_UPSTREAM_GOVERNOR_MAX_CONCURRENT: String(MAX_CONCURRENT),
  MIRROR_UPSTREAM_GOVERNOR_POINTS_PER_MINUTE: '100000',
  MIRROR_UPSTREAM_GOVERNOR_WRITE_SPACING_MS: String(SPACING_MS),
  MIRROR_UPSTREAM_GOVERNOR_MAX_WAIT_MS: '30000',
};

test.before(async () => {
  stack = await RedisStack.start(settings, 2);
  ({ github, redis } = stack);
  [a, b] = [stack.mirror(0), stack.mirror(1)];
});

test.after.always(() => stack?.close());

const request = (mirror: Mirror, path: string, token: string, init: RequestInit = {}) =>
  fetchText(`${mirror.url}${path}`, { ...init, headers: { authorization: token, accept: 'application/vnd.github+json', ...(init.headers as Record<string, string> | undefined) } });

const metricsOf = async (mirror: Mirror) => parseMetrics((await fetchText(`${mirror.url}/metrics`)).text);

test.serial('300 concurrent requests for 300 resources, one token, two replicas, GitHub at 200 ms: never more than maxConcurrent in flight, all answered', async (t) => {
  const token = 'token governed-burst';
  const paths = Array.from({ length: 300 }, (_, i) => `/repos/o/burst-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  github.resetCalls();
  github.setLatency(200);
  try {
    const answers = await Promise.all(paths.map((p, i) => request(i % 2 === 0 ? a : b, p, token)));
    t.deepEqual(
      answers.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.slice(0, 100)}`),
      [],
      'every request completed',
    );
    t.true(answers.every((r, i) => (JSON.parse(r.text) as { i: number }).i === i));
  } finally {
    github.setLatency(0);
  }
  const peak = github.peakInFlight(token);
  t.true(peak <= MAX_CONCURRENT, `peak in flight at GitHub: ${peak}`);
  t.true(peak >= MAX_CONCURRENT / 2, `the budget is used, not serialised: peak ${peak}`);
  t.is(github.callsTo('/repos/o/burst-0').length, 1);
  const [ma, mb] = await Promise.all([metricsOf(a), metricsOf(b)]);
  t.is(total(ma, 'github_mirror_governor_refusals_total') + total(mb, 'github_mirror_governor_refusals_total'), 0);
  const waited = (m: ReturnType<typeof parseMetrics>) => total(m, 'github_mirror_governor_wait_seconds_count', { result: 'admitted' });
  t.true(waited(ma) + waited(mb) >= 300, 'every upstream call went through the governor');
  t.is(valueOf(ma, 'github_mirror_governor_queue_depth'), 0);
});

test.serial('10 POSTs from two replicas at once reach GitHub at least writeSpacingMs apart', async (t) => {
  const token = 'token governed-writes';
  github.resetCalls();
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) => request(i % 2 === 0 ? a : b, '/repos/o/r/issues', token, { method: 'POST', body: JSON.stringify({ title: `t${i}` }), headers: { 'content-type': 'application/json' } })),
  );
  t.deepEqual(
    answers.map((r) => r.status),
    Array(10).fill(201),
  );
  const arrivals = github.calls
    .filter((c) => c.credential === token && c.method === 'POST')
    .map((c) => c.receivedAt)
    .sort((x, y) => x - y);
  t.is(arrivals.length, 10);
  const gaps = arrivals.slice(1).map((at, i) => at - (arrivals[i] as number));
  const shown = `gaps between writes at GitHub (ms): ${gaps.map((g) => g.toFixed(1)).join(', ')}`;
  // The replicas let the writes go SPACING_MS + 10% apart (Redis' clock); what GitHub sees also carries
  // the jitter of the way there, and this one process runs both mirrors, the fake and the clients on a
  // shared machine. So: spaced on average (the span), by at least the spacing for most (the median),
  // and never two together (without the governor the ten arrive within a few ms).
  t.true((arrivals.at(-1) as number) - (arrivals[0] as number) >= 9 * SPACING_MS, shown);
  t.true(([...gaps].sort((x, y) => x - y)[4] as number) >= SPACING_MS, shown);
  t.true(
    gaps.every((gap) => gap >= SPACING_MS / 2),
    shown,
  );
});

test.serial('a 429 with Retry-After: 30 seen by replica A holds the token on replica B: nothing sent, cached → RATE_LIMITED_HIT, uncached → 429', async (t) => {
  const token = 'token governed-held';
  github.setResource('/repos/o/held-cached', { body: { cached: true } });
  github.setResource('/repos/o/held-trigger', { body: { trigger: true } });
  github.setResource('/repos/o/held-uncached', { body: { uncached: true } });
  const warm = await request(b, '/repos/o/held-cached', token);
  t.is(warm.headers.get('x-cache'), 'ONLINE_MISS');
  github.injectFault('/repos/o/held-trigger', { kind: 'secondary-rate-limit', retryAfterSeconds: 30 }, 1);
  const limited = await request(a, '/repos/o/held-trigger', token);
  t.is(limited.status, 429);
  t.is(limited.headers.get('retry-after'), '30');
  const sent = github.calls.filter((c) => c.credential === token).length;
  const before = await metricsOf(b);

  const hit = await request(b, '/repos/o/held-cached', token);
  t.is(hit.status, 200);
  t.is(hit.headers.get('x-cache'), 'RATE_LIMITED_HIT');
  t.is(hit.text, warm.text);
  const miss = await request(b, '/repos/o/held-uncached', token);
  t.is(miss.status, 429);
  t.is(miss.headers.get('x-cache'), 'RATE_LIMITED_MISS');
  t.is(miss.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is((JSON.parse(miss.text) as { code: string }).code, 'SECONDARY_RATE_LIMITED');
  const retryAfter = Number(miss.headers.get('retry-after'));
  t.true(retryAfter >= 1 && retryAfter <= 30, `remaining Retry-After ${retryAfter}`);
  const posted = await request(b, '/repos/o/r/issues', token, { method: 'POST', body: '{}' });
  t.is(posted.status, 429);
  t.is((await request(a, '/repos/o/held-uncached', token)).status, 429, 'A holds it too');
  t.is(github.calls.filter((c) => c.credential === token).length, sent, 'nothing reached GitHub for that token');
  t.is((await request(b, '/repos/o/held-uncached', 'token governed-other')).status, 200, 'other tokens go on');

  const metrics = await metricsOf(b);
  t.is(valueOf(metrics, 'github_mirror_governor_holds_active'), 1);
  t.true(total(metrics, 'github_mirror_governor_refusals_total', { reason: 'held' }) >= 3);
  // the three held requests on B were no upstream calls: counted as refused, not as GitHub's 429s
  const delta = (labels: Record<string, string>) => total(metrics, 'github_mirror_upstream_requests_total', labels) - total(before, 'github_mirror_upstream_requests_total', labels);
  t.is(delta({ result: 'refused' }), 3);
  t.is(delta({ status_class: '4xx' }), 0);
  t.false((await fetchText(`${b.url}/metrics`)).text.includes('governed-held'), 'no token in the metrics');
});

test.serial('the same with leases: replica B admits the token from a lease when A sees the 429; once the hold message reaches B, B sends nothing', async (t) => {
  // leases of 10 s, so that B's lease is surely still running when A's 429 comes, even on a loaded machine
  const leasing = { MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, ...settings, MIRROR_UPSTREAM_GOVERNOR_LEASE_MS: '10000' };
  const c = await startMirror(github.url, leasing);
  const d = await startMirror(github.url, leasing);
  try {
    const token = 'token governed-held-leased';
    const paths = Array.from({ length: 10 }, (_, i) => `/repos/o/leased-${i}`);
    paths.forEach((p, i) => github.setResource(p, { body: { i } }));
    github.setResource('/repos/o/leased-trigger', { body: { trigger: true } });
    const leased = async () => total(await metricsOf(d), 'github_mirror_governor_leased_total');
    // a busy token on D: once D's subscriber is subscribed (it connects at the first call), a call
    // gets a lease and the next ones are admitted from it
    let used = 0;
    while ((await leased()) === 0 && used < paths.length - 1) t.is((await request(d, paths[used++] as string, token)).headers.get('x-cache'), 'ONLINE_MISS');
    t.true((await leased()) >= 1, 'D admitted calls of the token from its lease');
    const leasedBefore = await leased();
    const heldBefore = valueOf(await metricsOf(d), 'github_mirror_governor_holds_active') ?? 0;

    github.injectFault('/repos/o/leased-trigger', { kind: 'secondary-rate-limit', retryAfterSeconds: 30 }, 1);
    t.is((await request(c, '/repos/o/leased-trigger', token)).status, 429);
    const sent = github.calls.filter((call) => call.credential === token).length;
    await waitFor('the hold message reached D', async () => (valueOf(await metricsOf(d), 'github_mirror_governor_holds_active') ?? 0) > heldBefore, 10_000, 5);

    const hit = await request(d, paths[0] as string, token);
    t.is(hit.headers.get('x-cache'), 'RATE_LIMITED_HIT');
    const miss = await request(d, paths.at(-1) as string, token);
    t.is(miss.status, 429);
    t.is((JSON.parse(miss.text) as { code: string }).code, 'SECONDARY_RATE_LIMITED');
    t.is(github.calls.filter((call) => call.credential === token).length, sent, 'nothing reached GitHub for that token after the hold');
    t.is(await leased(), leasedBefore, 'nothing admitted from the lease after the hold');
  } finally {
    await c.stop();
    await d.stop();
  }
});

test.serial('a call kept back longer than maxWaitMs: cached → RATE_LIMITED_HIT, uncached → 429 GOVERNOR_WAIT_EXCEEDED with Retry-After', async (t) => {
  const tight = await startMirror(github.url, { MIRROR_UPSTREAM_GOVERNOR_MAX_CONCURRENT: '1', MIRROR_UPSTREAM_GOVERNOR_MAX_WAIT_MS: '200', MIRROR_UPSTREAM_TIMEOUT_MS: '10000' });
  try {
    const token = 'token governed-wait';
    github.setResource('/repos/o/wait-cached', { body: { cached: 1 } });
    github.setResource('/repos/o/wait-slow', { body: { slow: 1 } });
    github.setResource('/repos/o/wait-uncached', { body: { uncached: 1 } });
    const warm = await request(tight, '/repos/o/wait-cached', token);
    github.injectFault('/repos/o/wait-slow', { kind: 'latency', ms: 2000 }, 1);
    const slow = request(tight, '/repos/o/wait-slow', token);
    await waitFor('the slow call is at GitHub', () => github.callsTo('/repos/o/wait-slow').length === 1);
    const hit = await request(tight, '/repos/o/wait-cached', token);
    t.is(hit.status, 200);
    t.is(hit.headers.get('x-cache'), 'RATE_LIMITED_HIT');
    t.is(hit.text, warm.text);
    const miss = await request(tight, '/repos/o/wait-uncached', token);
    t.is(miss.status, 429);
    t.is(miss.headers.get('x-cache'), 'RATE_LIMITED_MISS');
    t.is((JSON.parse(miss.text) as { code: string }).code, 'GOVERNOR_WAIT_EXCEEDED');
    t.true(Number(miss.headers.get('retry-after')) >= 1);
    t.is(github.callsTo('/repos/o/wait-uncached').length, 0);
    t.is((await slow).status, 200);
    const metrics = await metricsOf(tight);
    t.is(valueOf(metrics, 'github_mirror_governor_refusals_total', { reason: 'wait_exceeded' }), 2);
    t.is(total(metrics, 'github_mirror_upstream_requests_total', { result: 'refused' }), 2);
    t.is((await request(tight, '/repos/o/wait-uncached', token)).status, 200, 'a turn again once the slow call is over');
  } finally {
    await tight.stop();
  }
});

test.serial('Redis killed mid-run: calls go on with in-memory limits, no request fails because of the governor', async (t) => {
  const token = 'token governed-outage';
  const paths = Array.from({ length: 10 }, (_, i) => `/repos/o/outage-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  github.resetCalls();
  let failures: string[] = [];
  let requests = 0;
  let running = true;
  const decided = { during: 0, refused: 0 };
  let outage = false;
  const offs = [a, b].map((m) =>
    m.bus.on('governor.decided', (event) => {
      if (outage && event.result === 'admitted') decided.during++;
      if (event.result !== 'admitted') decided.refused++;
    }),
  );
  const client = async (c: number) => {
    while (running) {
      const i = (c + requests) % paths.length;
      try {
        const answer = await request(c % 2 === 0 ? a : b, paths[i] as string, token);
        requests++;
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.headers.get('x-cache')}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const clients = Array.from({ length: 20 }, (_, c) => client(c));
  try {
    await waitFor('traffic', () => requests > 200);
    redis.kill('SIGKILL');
    await waitFor('both replicas on memory', () => a.cache.backend === 'memory' && b.cache.backend === 'memory', 10_000);
    outage = true;
    const during = requests;
    await waitFor('traffic during the outage', () => requests > during + 200);
    outage = false;
    await redis.restart();
    await waitFor('both replicas back on redis', () => a.cache.backend === 'redis' && b.cache.backend === 'redis', 15_000);
    const after = requests;
    await waitFor('traffic after recovery', () => requests > after + 200);
  } finally {
    running = false;
    await Promise.all(clients);
    for (const off of offs) off();
  }
  t.deepEqual(failures, []);
  failures = [];
  t.true(decided.during > 0, 'the governor kept counting (in memory) during the outage');
  t.is(decided.refused, 0);
  t.true(github.peakInFlight(token) <= 2 * MAX_CONCURRENT, 'each replica kept its own limit');
});
