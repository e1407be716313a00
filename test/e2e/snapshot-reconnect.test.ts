/**
 * Redis restarted empty while the mirror runs: as soon as the breaker closes again, one replica
 * restores the newest snapshot — no interval to wait for, no quota spent on re-filling the cache.
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let redis: RedisProcess;
let mirror: Mirror;
const TOKEN = 'token reconnect';

test.before(async () => {
  github = await FakeGitHub.start();
  redis = await startRedis();
  mirror = await startMirror(github.url, {
    MIRROR_CACHE_BACKEND: 'redis',
    MIRROR_REDIS_URL: redis.url,
    MIRROR_SNAPSHOT_STORE: 'file',
    MIRROR_SNAPSHOT_DIR: join(mkdtempSync(join(tmpdir(), 'ghm-reconnect-')), 'snapshots'),
  });
});

test.after.always(async () => {
  await mirror?.stop();
  await redis?.stop();
  await github?.close();
});

test('an empty Redis is restored from the snapshot when the breaker closes', async (t) => {
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

async function restoresOk(): Promise<number> {
  const text = (await fetchText(`${mirror.url}/metrics`)).text;
  const line = text.split('\n').find((l) => l.startsWith('github_mirror_restore_total{') && l.includes('outcome="ok"'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

async function runId(): Promise<string> {
  const info = await redis.cli('INFO', 'server');
  return /run_id:(\w+)/.exec(info)?.[1] ?? '';
}
