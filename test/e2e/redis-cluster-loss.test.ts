/**
 * Issue 14, item 4: losing one of three Redis Cluster masters (and its replica, so its slots stay
 * unreachable, then the cluster goes to `fail`) under load. Expected: no failed request, a lookup for
 * a slot whose master is gone falls back to memory for that call without waiting, a cluster in `fail`
 * state opens the cache breaker at once, and throughput during the loss stays within 2x of a mirror
 * on the memory backend under the same load (ratios of counts, no wall-clock thresholds).
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { sleep, startCluster, waitFor, type RedisClusterSet, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const KEYS = 90;
const CLIENTS = 16;
const NODE_TIMEOUT_MS = 3000;

let github: FakeGitHub;
let cluster: RedisClusterSet;
let onRedis: Mirror;
let onMemory: Mirror;

test.before(async () => {
  github = await FakeGitHub.start();
  for (let i = 0; i < KEYS; i++) github.setResource(`/repos/o/r${i}`, { body: { i, name: `resource ${i}` } });
  cluster = await startCluster({ nodeTimeoutMs: NODE_TIMEOUT_MS });
  onRedis = await startMirror(github.url, {
    MIRROR_CACHE_BACKEND: 'redis',
    MIRROR_REDIS_CLUSTER_NODES: cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(','),
    MIRROR_REDIS_KEY_PREFIX: 'loss:',
    MIRROR_SNAPSHOT_STORE: 'none',
  });
  onMemory = await startMirror(github.url, { MIRROR_SNAPSHOT_STORE: 'none' });
});

test.after.always(async () => {
  await onRedis?.stop();
  await onMemory?.stop();
  await cluster?.stop();
  await github?.close();
});

interface Load {
  /** Completed requests per 250 ms bucket since the load began. */
  buckets: number[];
  failed: number;
  slowestMs: number;
  stop(): Promise<void>;
}

/** CLIENTS loops of cached GETs over the KEYS resources until stopped. */
function load(mirror: Mirror): Load {
  const started = performance.now();
  const result: Load = { buckets: [], failed: 0, slowestMs: 0, stop: () => Promise.resolve() };
  let running = true;
  const loops = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let i = c; running; i += CLIENTS) {
      const sent = performance.now();
      try {
        const response = await fetch(`${mirror.url}/repos/o/r${i % KEYS}`, { headers: { authorization: 'token loss' } });
        await response.arrayBuffer();
        if (response.status !== 200) result.failed++;
      } catch {
        result.failed++;
      }
      const now = performance.now();
      result.slowestMs = Math.max(result.slowestMs, now - sent);
      const bucket = Math.floor((now - started) / 250);
      while (result.buckets.length <= bucket) result.buckets.push(0);
      result.buckets[bucket] = (result.buckets[bucket] ?? 0) + 1;
    }
  });
  result.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return result;
}

/** Requests per second over the buckets [from, to) (bucket = 250 ms). */
function rate(buckets: number[], from: number, to: number): number {
  const slice = buckets.slice(from, to);
  return (slice.reduce((a, b) => a + b, 0) / Math.max(1, slice.length)) * 4;
}

async function clusterState(node: RedisProcess): Promise<string> {
  const info = await node.cli('CLUSTER', 'INFO');
  return /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
}

async function readyz(mirror: Mirror): Promise<{ breakers: Record<string, string>; cache: { backend: string } }> {
  const response = await fetch(`${mirror.url}/readyz`);
  return (await response.json()) as { breakers: Record<string, string>; cache: { backend: string } };
}

test.serial('one master of three lost under load: no failed request, throughput within 2x of the memory fallback', async (t) => {
  t.timeout(90_000);
  // warm both mirrors: every resource cached
  for (const mirror of [onRedis, onMemory]) {
    for (let i = 0; i < KEYS; i++) await (await fetch(`${mirror.url}/repos/o/r${i}`, { headers: { authorization: 'token loss' } })).arrayBuffer();
  }

  // warm-up under load (JIT, connections), not counted
  for (const mirror of [onRedis, onMemory]) {
    const warmUp = load(mirror);
    await sleep(1000);
    await warmUp.stop();
  }

  const masters = await cluster.masterPorts();
  const byPort = new Map(cluster.nodes.map((n) => [n.port, n]));
  const victim = byPort.get(masters[0] as number) as RedisProcess;
  const nodesSeen = await victim.cli('CLUSTER', 'NODES');
  const myId = nodesSeen.split('\n').find((l) => l.includes('myself'))?.split(' ')[0] as string;
  const replicaLine = nodesSeen.split('\n').find((l) => l.includes('slave') && l.includes(myId)) as string;
  const replica = byPort.get(Number(replicaLine.split(' ')[1]?.split('@')[0]?.split(':')[1])) as RedisProcess;
  const survivor = byPort.get(masters[1] as number) as RedisProcess;

  const codes = new Map<string, number>();
  onRedis.bus.on('cache.error', (e) => {
    const what = `${e.code}: ${e.message.slice(0, 60)}`;
    codes.set(what, (codes.get(what) ?? 0) + 1);
  });
  // the same load on both mirrors at the same time: the machine's noise hits both alike
  const memoryLoad = load(onMemory);
  const redisLoad = load(onRedis);
  await sleep(2000);
  const killedAt = redisLoad.buckets.length;
  // the master and its replica: its slots stay unreachable (no failover), then the cluster is `fail`
  replica.kill('SIGKILL');
  victim.kill('SIGKILL');
  await Promise.all([victim.exited(), replica.exited()]);
  let failAt: number | undefined;
  await waitFor(
    'cluster fail',
    async () => {
      if ((await clusterState(survivor)) !== 'fail') return false;
      failAt ??= redisLoad.buckets.length;
      return true;
    },
    30_000,
    100,
  );
  const failedAt = failAt as number;
  await sleep(2000);
  const breakerAfterFail = (await readyz(onRedis)).breakers['cache'];
  await sleep(1000);
  await Promise.all([redisLoad.stop(), memoryLoad.stop()]);
  const end = Math.min(redisLoad.buckets.length, memoryLoad.buckets.length);
  const phases = {
    healthy: [2, killedAt],
    partial: [killedAt, failedAt],
    fail: [failedAt + 2, end],
  } as const;
  const rates = Object.fromEntries(
    Object.entries(phases).map(([phase, [from, to]]) => [phase, { redis: rate(redisLoad.buckets, from, to), memory: rate(memoryLoad.buckets, from, to) }]),
  ) as Record<keyof typeof phases, { redis: number; memory: number }>;

  t.log([...codes].map(([what, count]) => `${count} × ${what}`).join('\n'));
  for (const [phase, { redis, memory }] of Object.entries(rates)) {
    t.log(`${phase}: redis cluster ${redis.toFixed(0)} rps, memory backend ${memory.toFixed(0)} rps (ratio ${(redis / memory).toFixed(2)})`);
  }
  t.log(`one master lost before cluster_state fail: ${((failedAt - killedAt) / 4).toFixed(2)} s; cache breaker 2 s after fail: ${breakerAfterFail}`);
  t.log(`failed requests: ${redisLoad.failed}; slowest answer ${redisLoad.slowestMs.toFixed(0)} ms; redis per 250 ms from the kill: ${redisLoad.buckets.slice(killedAt).join(',')}`);

  t.is(redisLoad.failed, 0, 'no request failed');
  t.true(rates.partial.redis >= rates.partial.memory / 2, 'one master lost: within 2x of the memory backend');
  t.true(rates.fail.redis >= rates.fail.memory / 2, 'cluster fail: within 2x of the memory backend');
  t.is(breakerAfterFail, 'open', 'a cluster in fail state opens the cache breaker');
});
