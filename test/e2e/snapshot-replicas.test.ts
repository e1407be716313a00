/**
 * Replicas sharing one Redis: one snapshot per interval (a lease in Redis), one replica restores while
 * the others serve, a Redis flushed under running mirrors is restored at the next interval, and a
 * Redis that is down at start costs a warning, never the start.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { freePort, startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisLease } from '../../src/adapters/lease/redis-lease.adapter.js';
import { RedisCacheDump } from '../../src/adapters/cache/redis/redis-dump.adapter.js';
import { RESTORE_LEASE } from '../../src/domain/use-cases/restore-when-lost.js';
import type { Mirror } from '../../src/app/mirror.js';
import { capturingLogger, replay, resourcePaths, setResources, TOKENS, PER_CREDENTIAL_LAYOUT } from './snapshot-traffic.js';

let github: FakeGitHub;
let redis: RedisProcess;
let root: string;
let admin: Redis;
const mirrors: Mirror[] = [];
const caches: RedisCache[] = [];
const paths = resourcePaths(100);

test.before(async () => {
  [github, redis] = await Promise.all([FakeGitHub.start({ recordCalls: false, quota: 100_000 }), startRedis()]);
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-replicas-'));
  admin = new Redis({ host: redis.host, port: redis.port });
  setResources(github, paths);
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  for (const c of caches) await c.close();
  admin?.disconnect();
  await github?.close();
  await redis?.stop();
  await rm(root, { recursive: true, force: true });
});

async function replica(url: string, dir: string, extra: Record<string, string> = {}, logger?: ReturnType<typeof capturingLogger>): Promise<Mirror> {
  const cache = new RedisCache({ url, keyPrefix: 'rep:', commandTimeoutMs: 2000, maxReconnectDelayMs: 200 });
  caches.push(cache);
  await cache.start();
  const mirror = await startMirror(
    github.url,
    { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: url, MIRROR_REDIS_KEY_PREFIX: 'rep:', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: dir, ...extra },
    { cache, ...(logger ? { logger: logger.logger } : {}) },
  );
  mirrors.push(mirror);
  return mirror;
}

test.serial('two replicas, one interval: only one of them takes the snapshot', async (t) => {
  await admin.flushall();
  const dir = path.join(root, 'lease');
  const a = await replica(redis.url, dir);
  const b = await replica(redis.url, dir);
  await replay(a.url, paths, TOKENS.slice(0, 1));
  const [first, second] = await Promise.all([a.snapshots!.snapshotNow(), b.snapshots!.snapshotNow()]);
  t.deepEqual([first?.outcome, second?.outcome].sort(), ['ok', undefined].sort());
  t.is((await a.snapshots!.store.list()).length, 1);
  t.regex((await admin.get('rep:__lease:snapshot')) ?? '', /:/, 'the lease names its holder');
  const [, reserved] = await admin.scan('0', 'MATCH', 'rep:__*', 'COUNT', 10_000);
  t.deepEqual([...reserved].sort(), ['rep:__lease:snapshot', 'rep:__restored'], 'the only bookkeeping keys: the lease and the restored mark');
  await Promise.all([a.stop(), b.stop()]);
});

test.serial('while one replica restores (lease held), another starts at once without restoring', async (t) => {
  await admin.flushall();
  const dir = path.join(root, 'restore-lease');
  const warm = await replica(redis.url, dir);
  await replay(warm.url, paths, TOKENS.slice(0, 1));
  t.is((await warm.snapshots!.snapshotNow())?.outcome, 'ok');
  await warm.stop();
  await admin.flushall();

  const other = new RedisLease({ client: admin, keyPrefix: 'rep:', owner: 'replica-restoring-elsewhere' });
  t.true(await other.acquire(RESTORE_LEASE, 60_000));
  const logs = capturingLogger();
  const serving = await replica(redis.url, dir, {}, logs);
  t.true(serving.readiness().ready);
  t.is(await admin.dbsize(), 1, 'only the lease: nothing restored by this replica');
  t.true(logs.lines().some((l) => l.msg === 'restore skipped: another replica is restoring the shared cache'));
  const served = await replay(serving.url, paths.slice(0, 10), TOKENS.slice(0, 1));
  t.is(served.errors, 0);

  // the other replica finishes: it leaves the restored mark and releases the lease
  await new RedisCacheDump({ client: admin, keyPrefix: 'rep:' }).markRestored();
  await other.release(RESTORE_LEASE);
  const result = await serving.snapshots!.restoreNow();
  t.is(result, undefined, 'restored elsewhere (marked): this replica does not restore again');
  await serving.stop();
});

test.serial('Redis flushed under running replicas: the next interval restores it', async (t) => {
  await admin.flushall();
  const dir = path.join(root, 'flushed');
  const a = await replica(redis.url, dir, { MIRROR_SNAPSHOT_INTERVAL_SECONDS: '1' });
  await replay(a.url, paths, TOKENS.slice(0, 2));
  // A snapshot of the replayed cache must exist before the flush: ours, or — when the replay took
  // longer than the 1 s interval on a loaded machine — the interval timer's (it then holds this
  // interval's lease, and snapshotNow() is skipped until the next interval).
  let outcome: string | undefined;
  await waitFor(
    'a snapshot of the replayed cache',
    async () => {
      outcome = (await a.snapshots!.snapshotNow())?.outcome;
      return outcome === 'ok' || (a.snapshots!.readiness().lastSnapshot?.entries ?? 0) >= 200;
    },
    15_000,
    200,
  );
  t.true(outcome === 'ok' || (a.snapshots!.readiness().lastSnapshot?.entries ?? 0) >= 200);
  await admin.flushall();
  await waitFor('the restore by the interval timer', async () => (await admin.dbsize()) >= 200, 15_000, 100);
  const again = await replay(a.url, paths, TOKENS.slice(0, 2));
  t.is(again.outcomes.get('ONLINE_HIT'), 200);
  await a.stop();
});

test.serial('Redis down at start: the mirror starts, says so, and no snapshot is attempted against nothing', async (t) => {
  const deadUrl = `redis://127.0.0.1:${await freePort()}`;
  const logs = capturingLogger();
  const mirror = await replica(deadUrl, path.join(root, 'dead'), {}, logs);
  t.true(mirror.readiness().state === 'ready');
  const warnings = logs.lines().filter((l) => l.level === 40).map((l) => String(l.msg));
  t.true(
    warnings.some((m) => m.startsWith('snapshot: cache connection not ready at start') || m.startsWith('restore skipped: cannot tell whether the cache is empty')),
    warnings.join('\n'),
  );
  const result = await mirror.snapshots!.snapshotNow();
  t.true(result === undefined || result.outcome === 'failed');
  await mirror.stop();
});
