/**
 * Issue 4, must show: warm 1,000 resources × 5 tokens through the mirror (fake GitHub), take a
 * snapshot, then (a) flush Redis and restart the mirror, (b) restart a memory-backed mirror; the same
 * requests replayed are ≥ 99 % ONLINE_HIT and cost ≤ 1 % of the warm-up's quota (only the resources
 * changed meanwhile cost). Directory store here; the S3 store in snapshot-s3.test.ts.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import type { Mirror } from '../../src/app/mirror.js';
import { replay, resourcePaths, setResources, TOKENS, PER_CREDENTIAL_LAYOUT } from './snapshot-traffic.js';
import { restartScenario } from './snapshot-scenario.js';

let github: FakeGitHub;
let redis: RedisProcess;
let root: string;
const paths = resourcePaths(1000);
const mirrors: Mirror[] = [];
const caches: RedisCache[] = [];

test.before(async () => {
  [github, redis] = await Promise.all([FakeGitHub.start({ recordCalls: false, quota: 100_000 }), startRedis()]);
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-e2e-'));
  setResources(github, paths);
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  for (const c of caches) await c.close();
  await github?.close();
  await redis?.stop();
  await rm(root, { recursive: true, force: true });
});

test.serial('redis: warm, snapshot, FLUSHALL, restart → ≥ 99 % ONLINE_HIT and ≤ 1 % of the quota', async (t) => {
  const env = {
    ...PER_CREDENTIAL_LAYOUT,
    MIRROR_CACHE_BACKEND: 'redis',
    MIRROR_REDIS_URL: redis.url,
    MIRROR_REDIS_KEY_PREFIX: 'e2e:',
    MIRROR_SNAPSHOT_STORE: 'file',
    MIRROR_SNAPSHOT_DIR: path.join(root, 'redis'),
  };
  const redisCache = async (): Promise<RedisCache> => {
    const cache = new RedisCache({ url: redis.url, keyPrefix: 'e2e:', commandTimeoutMs: 2000 });
    caches.push(cache);
    await cache.start();
    return cache;
  };
  const report = await restartScenario(t, {
    github,
    paths,
    start: async () => {
      const mirror = await startMirror(github.url, env, { cache: await redisCache() });
      mirrors.push(mirror);
      return mirror;
    },
    betweenRestarts: async () => {
      t.is(await redis.cli('FLUSHALL'), 'OK');
      t.is(await redis.cli('DBSIZE'), '0');
    },
  });
  t.is(report.restored, 5000);
});

test.serial('memory: warm, snapshot, restart → ≥ 99 % ONLINE_HIT; the stop also wrote a final snapshot', async (t) => {
  const env = { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: path.join(root, 'memory') };
  const report = await restartScenario(t, {
    github,
    paths,
    start: async () => {
      const mirror = await startMirror(github.url, env);
      mirrors.push(mirror);
      return mirror;
    },
  });
  t.is(report.snapshotsAfterStop, report.snapshotsBeforeStop + 1, 'graceful stop of a memory mirror takes a final snapshot');
  t.is(report.restored, 5000);
});

test.serial('memory: a graceful stop alone (no scheduled snapshot yet) is enough to come back warm', async (t) => {
  const env = { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: path.join(root, 'memory-stop-only') };
  const some = paths.slice(0, 200);
  const first = await startMirror(github.url, env);
  mirrors.push(first);
  await replay(first.url, some, TOKENS.slice(0, 2));
  await first.stop();
  const second = await startMirror(github.url, env);
  mirrors.push(second);
  const again = await replay(second.url, some, TOKENS.slice(0, 2));
  t.is(again.outcomes.get('ONLINE_HIT'), 400);
});
