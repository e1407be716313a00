/**
 * Issue 4, must show: the process killed in the middle of a snapshot → the previous snapshot is still
 * the one restored. A child process writes a large snapshot into the directory store and into the S3
 * store (s3rver); it is SIGKILLed half-way; a mirror started afterwards restores the previous one.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import type { Mirror } from '../../src/app/mirror.js';
import { startLocalS3, S3RVER_CREDENTIALS, type LocalS3 } from '../adapters/snapshot-s3rver.js';
import { replay, resourcePaths, setResources, TOKENS, PER_CREDENTIAL_LAYOUT } from './snapshot-traffic.js';

process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;

const child = fileURLToPath(new URL('./snapshot-crash-child.ts', import.meta.url));
const ENTRIES = 20_000;
let github: FakeGitHub;
let s3: LocalS3;
let root: string;
const mirrors: Mirror[] = [];
const children = new Set<ChildProcess>();
const paths = resourcePaths(100);

test.before(async () => {
  [github, s3] = await Promise.all([FakeGitHub.start({ recordCalls: false, quota: 100_000 }), startLocalS3('crash-snapshots')]);
  root = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-crash-'));
  setResources(github, paths);
});

test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const m of mirrors) await m.stop();
  await github?.close();
  await s3?.stop();
  await rm(root, { recursive: true, force: true });
});

/** Runs the child until it has written `fraction` of its entries, then SIGKILLs it. */
function killMidSnapshot(env: Record<string, string>, fraction: number): Promise<{ killedAt: number; output: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: { ...process.env, NODE_ENV: 'test', CRASH_ENTRIES: String(ENTRIES), CRASH_BATCH_DELAY_MS: '2', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(proc);
    let output = '';
    let partial = '';
    let killedAt = -1;
    const guard = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('progress ')) output += `${line}\n`;
        const entries = line.startsWith('progress ') ? Number(line.slice(9)) : 0;
        if (killedAt < 0 && entries >= ENTRIES * fraction) {
          killedAt = entries;
          proc.kill('SIGKILL');
        }
      }
    });
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (_code, signal) => {
      clearTimeout(guard);
      children.delete(proc);
      if (signal !== 'SIGKILL' || killedAt < 0) reject(new Error(`the child was not killed mid-snapshot: ${output.slice(-2000)}`));
      else resolve({ killedAt, output });
    });
  });
}

async function scenario(t: ExecutionContext, env: Record<string, string>, evidence: () => Promise<void>): Promise<void> {
  const start = async (): Promise<Mirror> => {
    const mirror = await startMirror(github.url, { ...PER_CREDENTIAL_LAYOUT, MIRROR_CACHE_BACKEND: 'memory', ...env });
    mirrors.push(mirror);
    return mirror;
  };
  const first = await start();
  await replay(first.url, paths, TOKENS.slice(0, 2));
  t.is((await first.snapshots!.snapshotNow())?.outcome, 'ok');
  await first.stop();
  const before = await first.snapshots!.store.list();
  t.true(before.length >= 1);

  const { killedAt } = await killMidSnapshot(env, 0.4);
  t.log(`child killed after ${killedAt} of ${ENTRIES} entries (~${Math.round((killedAt * 4.1) / 1024)} MiB written)`);
  t.true(killedAt < ENTRIES);
  await evidence();
  const after = await first.snapshots!.store.list();
  t.deepEqual(
    after.map((s) => s.id),
    before.map((s) => s.id),
    'the half-written snapshot is not listed',
  );

  const second = await start();
  t.like(second.readiness().snapshot, { restore: { snapshotId: before[0]!.id, restored: 200 } });
  const again = await replay(second.url, paths, TOKENS.slice(0, 2));
  t.is(again.outcomes.get('ONLINE_HIT'), 200);
}

test.serial('directory store: killed mid-write, the previous snapshot is restored', async (t) => {
  const dir = path.join(root, 'dir');
  await scenario(t, { MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: dir }, async () => {
    const files = await readdir(dir);
    t.true(
      files.some((f) => f.startsWith('.') && f.endsWith('.tmp')),
      `the killed writer left its temporary file: ${files.join(', ')}`,
    );
  });
});

test.serial('S3 store: killed mid-upload, the previous snapshot is restored', async (t) => {
  await scenario(
    t,
    {
      MIRROR_SNAPSHOT_STORE: 's3',
      MIRROR_SNAPSHOT_S3_BUCKET: s3.bucket,
      MIRROR_SNAPSHOT_S3_ENDPOINT: s3.endpoint,
      MIRROR_SNAPSHOT_S3_FORCE_PATH_STYLE: 'true',
      MIRROR_SNAPSHOT_S3_PREFIX: 'crash/',
    },
    async () => {
      const objects = await s3.blobStore('crash/').list();
      t.false(
        objects.some((o) => o.size > 8 * 1024 * 1024),
        'no object holds the killed upload: its parts stay in an incomplete multipart upload',
      );
    },
  );
});
