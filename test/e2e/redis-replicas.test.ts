/**
 * Two replicas of the mirror sharing one real Redis: the cache is shared, and a Redis that dies,
 * hangs or crawls never fails a client request — the breaker moves both replicas to memory and back.
 */
import test from 'ava';
import type { FakeGitHub } from '../support/fake-github.js';
import { fetchText } from '../support/mirror-harness.js';
import { waitFor, type RedisProcess } from '../support/redis-harness.js';
import { RedisStack } from '../support/redis-stack.js';
import type { Mirror } from '../../src/app/mirror.js';

let stack: RedisStack | undefined;
let github: FakeGitHub;
let redis: RedisProcess;
let a: Mirror;
let b: Mirror;
const TOKEN = 'token replica-token';

const settings = {
  MIRROR_REDIS_COMMAND_TIMEOUT_MS: '200',
  MIRROR_CACHE_BREAKER_TIMEOUT_MS: '250',
  MIRROR_CACHE_BREAKER_RESET_TIMEOUT_MS: '500',
  MIRROR_UPSTREAM_TIMEOUT_MS: '10000',
};

test.before(async () => {
  stack = await RedisStack.start(settings, 2);
  ({ github, redis } = stack);
  [a, b] = [stack.mirror(0), stack.mirror(1)];
});

test.after.always(() => stack?.close());

const get = (mirror: Mirror, path: string) => fetchText(`${mirror.url}${path}`, { headers: { authorization: TOKEN, accept: 'application/vnd.github+json' } });

test.serial('a GET warmed through replica A is an ONLINE_HIT through replica B; one quota unit in all', async (t) => {
  github.setResource('/repos/o/shared', { body: { shared: true } });
  t.is(a.cache.backend, 'redis');
  const first = await get(a, '/repos/o/shared');
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  const second = await get(b, '/repos/o/shared');
  t.is(second.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(second.text, first.text);
  t.is(github.quotaSpent(TOKEN), 1);
  t.is(JSON.parse((await fetchText(`${b.url}/readyz`)).text).cache.backend, 'redis');
});

test.serial('Redis SIGKILLed under 20 clients through two replicas: zero failures, breaker opens, then closes and sharing resumes', async (t) => {
  const paths = Array.from({ length: 10 }, (_, i) => `/repos/o/kill-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  let failures = 0;
  let wrong = 0;
  let requests = 0;
  let running = true;
  const client = async (c: number) => {
    while (running) {
      const i = (c + requests) % paths.length;
      const replica = c % 2 === 0 ? a : b;
      try {
        const answer = await get(replica, paths[i] as string);
        requests++;
        if (answer.status !== 200) failures++;
        else if ((JSON.parse(answer.text) as { i: number }).i !== i) wrong++;
      } catch {
        failures++;
      }
    }
  };
  const clients = Array.from({ length: 20 }, (_, c) => client(c));
  await waitFor('traffic', () => requests > 200);
  redis.kill('SIGKILL');
  await waitFor('both replicas on memory', () => a.cache.backend === 'memory' && b.cache.backend === 'memory', 10_000);
  const during = requests;
  await waitFor('traffic during the outage', () => requests > during + 200);
  await redis.restart();
  await waitFor('both replicas back on redis', () => a.cache.backend === 'redis' && b.cache.backend === 'redis', 15_000);
  const after = requests;
  await waitFor('traffic after recovery', () => requests > after + 200);
  running = false;
  await Promise.all(clients);
  t.is(failures, 0);
  t.is(wrong, 0);
  t.true(requests > 600);

  // Sharing again: warm through A, hit through B, one more quota unit.
  github.setResource('/repos/o/after-restart', { body: { back: true } });
  const before = github.quotaSpent(TOKEN);
  t.is((await get(a, '/repos/o/after-restart')).headers.get('x-cache'), 'ONLINE_MISS');
  t.is((await get(b, '/repos/o/after-restart')).headers.get('x-cache'), 'ONLINE_HIT');
  t.is(github.quotaSpent(TOKEN), before + 1);
});

/** Times requests through a replica while Redis misbehaves; returns the slowest. */
async function slowestDuring(mirror: Mirror, paths: string[], rounds: number): Promise<{ slowest: number; failures: number }> {
  let slowest = 0;
  let failures = 0;
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      paths.map(async (p) => {
        const started = performance.now();
        const answer = await get(mirror, p);
        slowest = Math.max(slowest, performance.now() - started);
        if (answer.status !== 200) failures++;
      }),
    );
  }
  return { slowest, failures };
}

test.serial('Redis hung (SIGSTOP): requests fail over within the breaker timeout, never near the upstream timeout', async (t) => {
  await waitFor('redis', () => a.cache.backend === 'redis', 15_000);
  const paths = Array.from({ length: 40 }, (_, i) => `/repos/o/hung-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  await slowestDuring(a, paths, 1);
  const states: string[] = [];
  const off = a.bus.on('breaker.changed', (event) => {
    if ('breaker' in event && event.breaker === 'cache') states.push(event.state);
  });
  redis.pause();
  try {
    // The rolling window still holds the successes of the previous test: the breaker opens once the
    // failures outweigh them. Until then every call falls back on its own, within the timeout.
    let slowest = 0;
    let failures = 0;
    for (let round = 0; round < 30 && !states.includes('open'); round++) {
      const result = await slowestDuring(a, paths, 1);
      slowest = Math.max(slowest, result.slowest);
      failures += result.failures;
    }
    t.is(failures, 0);
    // the upstream timeout is 10 s; a request waiting on the hung Redis would take that long
    t.true(slowest < 10_000 / 4, `slowest ${Math.round(slowest)} ms`);
    t.true(states.includes('open'), `breaker states: ${states.join(',')}`);
    const open = await slowestDuring(a, paths, 1);
    t.is(open.failures, 0);
    t.true(open.slowest < 250, `with the breaker open, no request waits for Redis (${Math.round(open.slowest)} ms)`);
  } finally {
    off();
    redis.resume();
  }
  // half-open lets the next request through as the probe: traffic closes the breaker again
  await waitFor('back on redis', async () => (await get(a, paths[0] as string)).status === 200 && a.cache.backend === 'redis', 15_000, 200);
});

test.serial('Redis slow (DEBUG SLEEP): the same', async (t) => {
  const paths = Array.from({ length: 5 }, (_, i) => `/repos/o/slow-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  await slowestDuring(b, paths, 1);
  const sleeper = redis.cli('DEBUG', 'SLEEP', '3');
  try {
    const { slowest, failures } = await slowestDuring(b, paths, 3);
    t.is(failures, 0);
    t.true(slowest < 10_000 / 4, `slowest ${Math.round(slowest)} ms`);
  } finally {
    await sleeper;
  }
  await waitFor('back on redis', async () => (await get(b, paths[0] as string)).status === 200 && b.cache.backend === 'redis', 15_000, 200);
});

test.serial('cross-replica coalescing: a cold burst over both replicas costs one quota unit', async (t) => {
  await waitFor('both on redis', () => a.cache.backend === 'redis' && b.cache.backend === 'redis', 15_000);
  github.setResource('/repos/o/burst', { body: { burst: true } });
  github.setLatency(100);
  try {
    const before = github.quotaSpent(TOKEN);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => get(i % 2 === 0 ? a : b, '/repos/o/burst')));
    t.true(answers.every((r) => r.status === 200 && (JSON.parse(r.text) as { burst: boolean }).burst));
    t.is(github.quotaSpent(TOKEN) - before, 1);
    t.true(answers.some((r) => (r.headers.get('cache-status') ?? '').includes('collapsed')));
  } finally {
    github.setLatency(0);
  }
});
