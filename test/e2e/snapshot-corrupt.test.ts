/**
 * Issue 4, must show: a corrupted snapshot file → the mirror starts, with a clear error line and a
 * metric, from the next older snapshot, or empty when none is usable. Never a crash.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { parseMetrics, total } from '../support/prometheus-harness.js';
import type { Mirror } from '../../src/app/mirror.js';
import { MAGIC } from '../../src/adapters/snapshot/snapshot-format.js';
import { capturingLogger, replay, resourcePaths, setResources, TOKENS } from './snapshot-traffic.js';

let github: FakeGitHub;
let root: string;
const mirrors: Mirror[] = [];
const paths = resourcePaths(100);

test.before(async () => {
  github = await FakeGitHub.start({ recordCalls: false, quota: 100_000 });
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-corrupt-'));
  setResources(github, paths);
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  await github?.close();
  await rm(root, { recursive: true, force: true });
});

async function mirrorOn(dir: string, logger?: ReturnType<typeof capturingLogger>): Promise<Mirror> {
  const mirror = await startMirror(
    github.url,
    { MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: dir },
    logger ? { logger: logger.logger } : {},
  );
  mirrors.push(mirror);
  return mirror;
}

/** Two snapshots: the older with the first half of the resources, the newer with all of them. */
async function twoSnapshots(dir: string): Promise<{ older: string; newer: string }> {
  const mirror = await mirrorOn(dir);
  await replay(mirror.url, paths.slice(0, 50), TOKENS.slice(0, 2));
  const older = await mirror.snapshots!.snapshotNow();
  await replay(mirror.url, paths.slice(50), TOKENS.slice(0, 2));
  const newer = await mirror.snapshots!.snapshotNow();
  await mirror.stop();
  if (older?.outcome !== 'ok' || newer?.outcome !== 'ok') throw new Error('snapshots failed');
  // the final snapshot taken at stop is left out of this story
  const store = mirror.snapshots!.store;
  for (const s of await store.list()) if (s.id !== older.info.id && s.id !== newer.info.id) await store.remove(s.id);
  return { older: older.info.id, newer: newer.info.id };
}

function metric(text: string, name: string, outcome: string): number {
  return total(parseMetrics(text), name, { outcome });
}

test.serial('a corrupted newest snapshot: clear error, metric, and the older one is restored', async (t) => {
  const dir = path.join(root, 'flipped');
  const { older, newer } = await twoSnapshots(dir);
  const file = path.join(dir, `${newer}.snap`);
  const bytes = await readFile(file);
  const at = Math.floor(bytes.length * 0.6);
  bytes[at] = bytes[at]! ^ 0x5a;
  await writeFile(file, bytes);

  const logs = capturingLogger();
  const mirror = await mirrorOn(dir, logs);
  const rejected = logs.lines().find((l) => typeof l.msg === 'string' && l.msg.includes(`snapshot ${newer} rejected (corrupt)`));
  t.truthy(rejected, 'one clear error line names the snapshot and the reason');
  t.is(rejected?.level, 50, 'logged as an error');
  t.regex(String(rejected?.msg), /checksum mismatch|does not inflate|SHA-256/);
  t.truthy(logs.lines().find((l) => l.msg === 'snapshot restored' && l.snapshotId === older));

  const ready = await fetchText(`${mirror.url}/readyz`);
  t.is(ready.status, 200);
  t.like(JSON.parse(ready.text), { ready: true, restore: { state: 'ok' }, snapshot: { restore: { snapshotId: older } } });
  const metrics = (await fetchText(`${mirror.url}/metrics`)).text;
  t.is(metric(metrics, 'github_mirror_restore_total', 'corrupt'), 1);
  t.is(metric(metrics, 'github_mirror_restore_total', 'ok'), 1);

  // the older snapshot's resources are hits; the verified blocks read from the corrupt one before the
  // bad byte were kept too, so at least half the rest are hits as well
  const again = await replay(mirror.url, paths, TOKENS.slice(0, 2));
  t.true((again.outcomes.get('ONLINE_HIT') ?? 0) >= 100, JSON.stringify(Object.fromEntries(again.outcomes)));
  t.is(again.errors, 0);
});

test.serial('every snapshot unusable (wrong version, truncated): the mirror starts empty, ready, and says why', async (t) => {
  const dir = path.join(root, 'all-bad');
  const { older, newer } = await twoSnapshots(dir);
  const newerFile = path.join(dir, `${newer}.snap`);
  const bytes = await readFile(newerFile);
  bytes.writeUInt16BE(99, MAGIC.length);
  await writeFile(newerFile, bytes);
  const olderFile = path.join(dir, `${older}.snap`);
  await truncate(olderFile, Math.floor((await readFile(olderFile)).length / 2));

  const logs = capturingLogger();
  const mirror = await mirrorOn(dir, logs);
  const messages = logs.lines().map((l) => String(l.msg));
  t.true(messages.some((m) => m.includes(`snapshot ${newer} rejected (version)`) && m.includes('format version 99 is not supported')), messages.join('\n'));
  t.true(messages.some((m) => m.includes(`snapshot ${older} rejected (truncated)`)));
  t.true(messages.some((m) => m.startsWith('restore failed: no usable snapshot')));

  const ready = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text);
  t.is(ready.ready, true);
  const served = await fetchText(`${mirror.url}${paths[60]}`, { headers: { authorization: TOKENS[0]! } });
  t.is(served.status, 200);
  t.is(served.headers.get('x-cache'), 'ONLINE_MISS', 'empty cache: served from GitHub');
});

test.serial('a snapshot directory holding garbage files and a foreign manifest does not stop the mirror', async (t) => {
  const dir = path.join(root, 'garbage');
  const { newer } = await twoSnapshots(dir);
  await writeFile(path.join(dir, `${newer}.manifest.json`), 'not json at all');
  await writeFile(path.join(dir, 'README.txt'), 'operators leave notes here');
  const logs = capturingLogger();
  const mirror = await mirrorOn(dir, logs);
  t.true(logs.lines().some((l) => String(l.msg).includes(`snapshot ${newer} rejected (manifest)`)));
  t.true(mirror.readiness().ready);
});
