/**
 * The operator CLI (`npm run snapshot -- ...`) as a process, against a real Redis and a directory
 * store: export the live cache, list, inspect, import back into a flushed Redis (absent keys only),
 * add a file to another store, and refuse a damaged file with exit status 1.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import type { CachedEntry } from '../../src/domain/model.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(root, 'scripts', 'snapshot-cli.ts');
let redis: RedisProcess;
let cache: RedisCache;
let dir: string;

test.before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-cli-'));
  cache = new RedisCache({ url: redis.url, keyPrefix: 'cli:', commandTimeoutMs: 2000 });
  await cache.start();
});

test.after.always(async () => {
  await cache?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        MIRROR_CACHE_BACKEND: 'redis',
        MIRROR_REDIS_URL: redis.url,
        MIRROR_REDIS_KEY_PREFIX: 'cli:',
        MIRROR_SNAPSHOT_STORE: 'file',
        MIRROR_SNAPSHOT_DIR: path.join(dir, 'store'),
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function entry(n: number): CachedEntry {
  return { status: 200, headers: { etag: `"${n}"` }, body: Buffer.from(JSON.stringify({ n, pad: 'p'.repeat(400) })), etag: `"${n}"`, storedAt: n, validatedAt: n };
}

const body = (e: CachedEntry | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());

test.serial('export live, list, inspect, import into a flushed Redis, import a file into another store, refuse a damaged file', async (t) => {
  for (let i = 0; i < 300; i++) await cache.store(`k${i}`, entry(i), 3600);
  const file = path.join(dir, 'exported.snap');

  const exported = await run(['export', 'live', '--out', file]);
  t.is(exported.code, 0, exported.stderr);
  t.regex(exported.stdout, /snapshot \S+: 300 entries/);
  t.regex(exported.stdout, /verdict\s+OK/);

  const listed = await run(['list']);
  t.is(listed.code, 0);
  t.regex(listed.stdout, /1 snapshot\(s\)/);
  t.regex(listed.stdout, /\s300\s/);

  t.is(await redis.cli('FLUSHALL'), 'OK');
  await cache.store('k7', { ...entry(7), body: Buffer.from('newer') }, 3600);
  const imported = await run(['import', 'latest']);
  t.is(imported.code, 0, imported.stderr);
  t.regex(imported.stdout, /299 entries written, 1 already present \(kept\), 0 expired/);
  t.is(body(await cache.lookup('k7')), 'newer');
  t.is(body(await cache.lookup('k8')), body(entry(8)));

  const other = { MIRROR_SNAPSHOT_DIR: path.join(dir, 'other-store') };
  const added = await run(['import', file, '--to-store'], other);
  t.is(added.code, 0, added.stderr);
  t.regex((await run(['list'], other)).stdout, /1 snapshot\(s\)/);

  t.is(await redis.cli('FLUSHALL'), 'OK');
  const fromFile = await run(['import', file]);
  t.is(fromFile.code, 0, fromFile.stderr);
  t.regex(fromFile.stdout, /300 entries written/);

  const bytes = await readFile(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0xff;
  const damaged = path.join(dir, 'damaged.snap');
  await writeFile(damaged, bytes);
  const inspected = await run(['inspect', damaged]);
  t.is(inspected.code, 1);
  t.regex(inspected.stderr, /is NOT usable: block \d+: checksum mismatch/);

  const usage = await run(['frobnicate']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /usage: npm run snapshot/);
});
