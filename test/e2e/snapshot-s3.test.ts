/**
 * Issue 4, must show, with the S3 store: the restart scenario of snapshot-restart.test.ts against a
 * real S3-compatible server (s3rver) on a loopback port, the mirror configured only through its
 * MIRROR_SNAPSHOT_S3_* settings, credentials from the AWS SDK's default chain (environment).
 */
import test from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import type { Mirror } from '../../src/app/mirror.js';
import { startLocalS3, S3RVER_CREDENTIALS, type LocalS3 } from '../adapters/snapshot-s3rver.js';
import { resourcePaths, setResources, PER_CREDENTIAL_LAYOUT } from './snapshot-traffic.js';
import { restartScenario } from './snapshot-scenario.js';

// The SDK's default credential chain reads the environment first. This file runs in its own process,
// and with credentials present the chain never reaches for an instance metadata endpoint.
process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;

let github: FakeGitHub;
let redis: RedisProcess;
let s3: LocalS3;
const paths = resourcePaths(1000);
const mirrors: Mirror[] = [];
const caches: RedisCache[] = [];

test.before(async () => {
  [github, redis, s3] = await Promise.all([FakeGitHub.start({ recordCalls: false, quota: 100_000 }), startRedis(), startLocalS3('mirror-snapshots')]);
  setResources(github, paths);
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  for (const c of caches) await c.close();
  await github?.close();
  await redis?.stop();
  await s3?.stop();
});

function s3Env(prefix: string): Record<string, string> {
  return {
    MIRROR_SNAPSHOT_STORE: 's3',
    MIRROR_SNAPSHOT_S3_BUCKET: s3.bucket,
    MIRROR_SNAPSHOT_S3_PREFIX: prefix,
    MIRROR_SNAPSHOT_S3_ENDPOINT: s3.endpoint,
    MIRROR_SNAPSHOT_S3_FORCE_PATH_STYLE: 'true',
    MIRROR_SNAPSHOT_S3_REGION: 'eu-west-1',
  };
}

test.serial('memory + S3: warm, snapshot, restart → ≥ 99 % ONLINE_HIT and ≤ 1 % of the quota', async (t) => {
  const env = { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'memory', ...s3Env('memory/') };
  const report = await restartScenario(t, {
    github,
    paths,
    start: async () => {
      const mirror = await startMirror(github.url, env);
      mirrors.push(mirror);
      t.is(mirror.snapshots?.store.name, 's3');
      return mirror;
    },
  });
  t.is(report.restored, 5000);
});

test.serial('redis + S3: warm, snapshot, FLUSHALL, restart → ≥ 99 % ONLINE_HIT and ≤ 1 % of the quota', async (t) => {
  const env = { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_REDIS_KEY_PREFIX: 's3e2e:', ...s3Env('redis/') };
  const report = await restartScenario(t, {
    github,
    paths,
    start: async () => {
      const cache = new RedisCache({ url: redis.url, keyPrefix: 's3e2e:', commandTimeoutMs: 2000 });
      caches.push(cache);
      await cache.start();
      const mirror = await startMirror(github.url, env, { cache });
      mirrors.push(mirror);
      return mirror;
    },
    betweenRestarts: async () => {
      t.is(await redis.cli('FLUSHALL'), 'OK');
    },
  });
  t.is(report.restored, 5000);
});
