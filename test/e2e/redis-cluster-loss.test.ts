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

  const memoryLoad = load(onMemory);
  await sleep(3000);
  await memoryLoad.stop();
  const memoryRate = rate(memoryLoad.buckets, 2, 12);

  const masters = await cluster.masterPorts();
  const byPort = new Map(cluster.nodes.map((n) => [n.port, n]));
  const victim = byPort.get(masters[0] as number) as RedisProcess;
  const myId = (await victim.cli('CLUSTER', 'NODES')).split('\n').find((l) => l.includes('myself'))?.split(' ')[0] as string;
  const replicaLine = (await victim.cli('CLUSTER', 'NODES')).split('\n').find((l) => l.includes('slave') && l.includes(myId)) as string;
  const replica = byPort.get(Number(replicaLine.split(' ')[1]?.split('@')[0]?.split(':')[1])) as RedisProcess;
  const survivor = byPort.get(masters[1] as number) as RedisProcess;

  const redisLoad = load(onRedis);
  await sleep(2000);
  const healthyRate = rate(redisLoad.buckets, 2, 8);
  const killedAt = redisLoad.buckets.length;
  // the master and its replica: its slots stay unreachable (no failover), then the cluster is `fail`
  replica.kill('SIGKILL');
  victim.kill('SIGKILL');
  await Promise.all([victim.exited(), replica.exited()]);
  const breakersSeen = new Set<string>();
  let failAt: number | undefined;
  await waitFor(
    'cluster fail',
    async () => {
      breakersSeen.add((await readyz(onRedis)).breakers['cache'] ?? 'none');
      if ((await clusterState(survivor)) !== 'fail') return false;
      failAt ??= redisLoad.buckets.length;
      return true;
    },
    30_000,
    100,
  );
  const partialRate = rate(redisLoad.buckets, killedAt, failAt as number);
  await sleep(2000);
  const breakerOpenAfterFail = (await readyz(onRedis)).breakers['cache'];
  await sleep(1000);
  await redisLoad.stop();
  const failRate = rate(redisLoad.buckets, (failAt as number) + 2, redisLoad.buckets.length);

  t.log(`memory backend: ${memoryRate.toFixed(0)} rps`);
  t.log(`redis cluster healthy: ${healthyRate.toFixed(0)} rps`);
  t.log(`one master lost, cluster still ok (${(((failAt as number) - killedAt) / 4).toFixed(2)} s): ${partialRate.toFixed(0)} rps`);
  t.log(`cluster_state fail: ${failRate.toFixed(0)} rps; cache breaker 2 s after: ${breakerOpenAfterFail}`);
  t.log(`failed requests: ${redisLoad.failed}; slowest answer ${redisLoad.slowestMs.toFixed(0)} ms; per 250 ms after the kill: ${redisLoad.buckets.slice(killedAt).join(',')}`);

  t.is(redisLoad.failed, 0, 'no request failed');
  t.true(partialRate >= memoryRate / 2, `partial loss ${partialRate.toFixed(0)} rps vs memory ${memoryRate.toFixed(0)} rps`);
  t.true(failRate >= memoryRate / 2, `cluster fail ${failRate.toFixed(0)} rps vs memory ${memoryRate.toFixed(0)} rps`);
  t.is(breakerOpenAfterFail, 'open', 'a cluster in fail state opens the cache breaker');
});
