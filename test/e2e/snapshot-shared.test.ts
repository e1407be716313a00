/**
 * Issue 16: snapshots of the shared layout (cache.shareAcrossCredentials, the default). The dumps see
 * entries, bodies and indexes as records; a snapshot restores into a flushed Redis and into a restarted
 * memory-backed mirror, after which every credential's entry answers again and a new token is still
 * served the stored bodies by free 304s. A snapshot of the other layout is refused with a clear message
 * (its entries could never be looked up: docs/snapshots.md) and the mirror starts empty.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';
import { capturingLogger, PER_CREDENTIAL_LAYOUT, replay, resourcePaths, setResources, TOKENS } from './snapshot-traffic.js';

let github: FakeGitHub;
let redis: RedisProcess;
let root: string;
const paths = resourcePaths(100);
const mirrors: Mirror[] = [];
const NEWCOMER = 'token snap-newcomer-9999';

test.before(async () => {
  [github, redis] = await Promise.all([FakeGitHub.start({ recordCalls: false, quota: 100_000 }), startRedis()]);
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-shared-'));
  setResources(github, paths);
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  await github?.close();
  await redis?.stop();
  await rm(root, { recursive: true, force: true });
});

async function start(env: Record<string, string>, logger?: ReturnType<typeof capturingLogger>): Promise<Mirror> {
  const mirror = await startMirror(github.url, env, logger ? { logger: logger.logger } : {});
  mirrors.push(mirror);
  return mirror;
}

/** Each token in turn (a token's reads run concurrently): the first pays, the others revalidate for free. */
async function warm(mirror: Mirror): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  for (const token of TOKENS) {
    const run = await replay(mirror.url, paths, [token]);
    for (const [outcome, n] of run.outcomes) outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + n);
  }
  return outcomes;
}

const records = paths.length * TOKENS.length + 2 * paths.length;

test.serial('redis: warm, snapshot, FLUSHALL, restart: every entry and body is back, a new token is served for free', async (t) => {
  const env = {
    MIRROR_CACHE_BACKEND: 'redis',
    MIRROR_REDIS_URL: redis.url,
    MIRROR_REDIS_KEY_PREFIX: 'shs:',
    MIRROR_SNAPSHOT_STORE: 'file',
    MIRROR_SNAPSHOT_DIR: path.join(root, 'redis'),
  };
  github.resetCalls();
  const first = await start(env);
  const warmed = await warm(first);
  t.is(warmed.get('ONLINE_MISS'), paths.length);
  t.is(warmed.get('ONLINE_HIT'), paths.length * (TOKENS.length - 1));
  t.is(github.totalQuotaSpent(), paths.length, 'one unit per resource, not per token');
  const taken = await first.snapshots!.snapshotNow();
  t.is(taken?.outcome, 'ok');
  if (taken?.outcome === 'ok') {
    t.is(taken.info.entries, records, 'entries, one body and one index per resource');
    t.is(taken.info.entryFormat, 'mirror-entry-v1/bodies-shared-across-credentials');
  }
  await first.stop();
  t.is(await redis.cli('FLUSHALL'), 'OK');

  github.resetCalls();
  const second = await start(env);
  t.like(second.readiness().restore, { state: 'ok', restored: records });
  const after = await replay(second.url, paths);
  t.is(after.outcomes.get('ONLINE_HIT'), paths.length * TOKENS.length);
  const newcomer = await replay(second.url, paths, [NEWCOMER]);
  t.is(newcomer.outcomes.get('ONLINE_HIT'), paths.length, 'the restored indexes and bodies serve a token never seen');
  t.is(github.totalQuotaSpent(), 0);
  await second.stop();
});

test.serial('memory: a graceful stop and a start bring back the shared layout', async (t) => {
  const env = { MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: path.join(root, 'memory') };
  const first = await start(env);
  await warm(first);
  await first.stop();
  github.resetCalls();
  const second = await start(env);
  t.like(second.readiness().restore, { state: 'ok', restored: records });
  t.is((await replay(second.url, paths)).outcomes.get('ONLINE_HIT'), paths.length * TOKENS.length);
  t.is((await replay(second.url, paths, [NEWCOMER])).outcomes.get('ONLINE_HIT'), paths.length);
  t.is(github.totalQuotaSpent(), 0);
});

test.serial('a snapshot of the per-credential layout is refused by a mirror that shares bodies, with a clear message', async (t) => {
  const dir = path.join(root, 'older');
  const older = await start({ ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: dir });
  await replay(older.url, paths.slice(0, 10), TOKENS.slice(0, 2));
  await older.stop();
  const logs = capturingLogger();
  const mirror = await start({ MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: dir }, logs);
  t.true(mirror.readiness().ready, 'the mirror starts anyway');
  const refused = logs.lines().find((l) => String(l.msg).includes('rejected (incompatible)'));
  t.truthy(refused, logs.lines().map((l) => String(l.msg)).join('\n'));
  t.regex(String(refused?.msg), /"mirror-entry-v1".*"mirror-entry-v1\/bodies-shared-across-credentials"/);
  github.resetCalls();
  const served = await replay(mirror.url, paths.slice(0, 10), TOKENS.slice(0, 1));
  t.is(served.outcomes.get('ONLINE_MISS'), 10, 'an empty cache: it fills again');
});
