/**
 * Redis restarted empty while the mirror runs: as soon as the breaker closes again, one replica
 * restores the newest snapshot — no interval to wait for, no quota spent on re-filling the cache.
 * And a Redis that lost its data but already holds a few entries written since (replicas storing
 * misses before the restore check) is restored too: the decision is the missing mark, not "empty".
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';
import { RedisStack } from '../support/redis-stack.js';
import { parseMetrics, total } from '../support/prometheus-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

let stack: RedisStack | undefined;
let github: FakeGitHub;
let redis: RedisProcess;
let mirror: Mirror;
const TOKEN = 'token reconnect';

test.before(async () => {
  stack = await RedisStack.start({
    MIRROR_SNAPSHOT_STORE: 'file',
    MIRROR_SNAPSHOT_DIR: join(mkdtempSync(join(tmpdir(), 'ghm-reconnect-')), 'snapshots'),
  });
  ({ github, redis } = stack);
  mirror = stack.mirror();
});

const cleanups: Array<() => Promise<unknown>> = [];

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await stack?.close();
});

test.serial('an empty Redis is restored from the snapshot when the breaker closes', async (t) => {
  const paths = Array.from({ length: 20 }, (_, i) => `/repos/o/reconnect-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  for (const p of paths) await fetchText(`${mirror.url}${p}`, { headers: { authorization: TOKEN } });
  t.truthy(await mirror.snapshots?.snapshotNow());
  const restoresBefore = await restoresOk();
  const runBefore = await runId();

  // no persistence: a new process comes back empty. The mirror may reconnect (and even restore)
  // before this test can look, so "empty" is shown by the new run id, not by a racy DBSIZE of 0.
  await redis.restart();
  t.not(await runId(), runBefore);
  // no client traffic: only the reconnect can trigger the restore
  await waitFor('restored', async () => (await restoresOk()) > restoresBefore, 15_000, 100);
  t.is(await restoresOk(), restoresBefore + 1);
  t.true(Number(await redis.cli('DBSIZE')) >= 20);

  github.resetCalls();
  for (const p of paths) {
    const answer = await fetchText(`${mirror.url}${p}`, { headers: { authorization: TOKEN } });
    t.is(answer.headers.get('x-cache'), 'ONLINE_HIT');
  }
  t.is(github.quotaSpent(TOKEN), 0);
});

test.serial('a Redis that lost its data but holds a few entries written since is restored at the next interval', async (t) => {
  const own = await startRedis();
  cleanups.push(() => own.stop());
  const m = await startMirror(github.url, {
    MIRROR_CACHE_BACKEND: 'redis',
    MIRROR_REDIS_URL: own.url,
    MIRROR_REDIS_KEY_PREFIX: 'lost:',
    MIRROR_SNAPSHOT_STORE: 'file',
    MIRROR_SNAPSHOT_INTERVAL_SECONDS: '1',
    MIRROR_SNAPSHOT_DIR: join(mkdtempSync(join(tmpdir(), 'ghm-lost-')), 'snapshots'),
  });
  cleanups.push(() => m.stop());
  const client = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await client.connect();
  cleanups.push(() => client.quit());

  const paths = Array.from({ length: 20 }, (_, i) => `/repos/o/lost-${i}`);
  paths.forEach((p, i) => github.setResource(p, { body: { i } }));
  for (const p of paths) await fetchText(`${m.url}${p}`, { headers: { authorization: TOKEN } });
  t.truthy(await m.snapshots?.snapshotNow());
  const restoresBefore = await restoresOk(m);

  // the data is lost and, in the same breath, one replica stores a miss: never found empty
  const [one] = (await client.scan('0', 'MATCH', 'lost:[^_]*', 'COUNT', 1000))[1];
  t.truthy(one);
  // any kind of key will do (entries are strings, a resource's body counts a hash): copied as it is
  const value = await client.dumpBuffer(one!);
  await client.multi().flushall().restore(one!, 600_000, value).exec();
  t.is(await client.dbsize(), 1);

  await waitFor('restored', async () => (await restoresOk(m)) > restoresBefore, 15_000, 100);
  github.resetCalls();
  for (const p of paths) {
    const answer = await fetchText(`${m.url}${p}`, { headers: { authorization: TOKEN } });
    t.is(answer.headers.get('x-cache'), 'ONLINE_HIT');
  }
  t.is(github.quotaSpent(TOKEN), 0);
});

async function restoresOk(of: Mirror = mirror): Promise<number> {
  const text = (await fetchText(`${of.url}/metrics`)).text;
  return total(parseMetrics(text), 'github_mirror_restore_total', { outcome: 'ok' });
}

async function runId(): Promise<string> {
  const info = await redis.cli('INFO', 'server');
  return /run_id:(\w+)/.exec(info)?.[1] ?? '';
}
