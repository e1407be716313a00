/**
 * Cached data at rest reveals nothing without the client's token: after traffic with known tokens,
 * a full dump of Redis (SCAN + GET) and the snapshot files hold no token and no plaintext body; a
 * value written by someone without the key is a miss. Also: a snapshot taken from Redis restores into
 * a memory-backed mirror, whose entries open with the client's token at its first request.
 *
 * Both storage layouts: the per-credential one (cache.shareAcrossCredentials=false, every value sealed
 * with its credential's key) and the shared one (bodies sealed under a key derived from cache.secret,
 * entries with their credential's key). docs/security.md says what each lets a dump holder read.
 */
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, inflateRawSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { SnapshotDecoder, MAGIC } from '../../src/adapters/snapshot/snapshot-format.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let redis: RedisProcess;
const mirrors: Mirror[] = [];
const TOKENS = ['token ghp_SECRETalpha0000000000000000000000', 'Bearer github_pat_SECRETbeta111111111', 'token gho_SECRETgamma22222222222222222'];
const MARKER = 'PLAINTEXT-BODY-MARKER';
const dir = mkdtempSync(join(tmpdir(), 'ghm-confidential-'));
const PER_CREDENTIAL = { MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: 'false' };

test.before(async () => {
  github = await FakeGitHub.start();
  redis = await startRedis();
  for (let i = 0; i < 20; i++) github.setResource(`/repos/o/secret-${i}`, { body: { note: `${MARKER}-${i}`, filler: 'x'.repeat(2000) } });
});

test.after.always(async () => {
  for (const m of mirrors) await m.stop();
  await redis?.stop();
  await github?.close();
});

async function start(env: Record<string, string>): Promise<Mirror> {
  const mirror = await startMirror(github.url, env);
  mirrors.push(mirror);
  return mirror;
}

async function traffic(mirror: Mirror): Promise<void> {
  for (const token of TOKENS) {
    for (let i = 0; i < 20; i++) {
      const answer = await fetchText(`${mirror.url}/repos/o/secret-${i}`, { headers: { authorization: token } });
      if (!answer.text.includes(MARKER)) throw new Error('traffic failed');
    }
  }
}

/** Every secret-bearing string to look for, also the bare token values without their scheme. */
const needles = [MARKER, ...TOKENS, ...TOKENS.map((t) => t.split(' ')[1] as string)];

function assertClean(t: import('ava').ExecutionContext, bytes: Buffer, where: string): void {
  for (const needle of needles) t.is(bytes.indexOf(needle), -1, `${where} contains ${needle.slice(0, 12)}…`);
}

/** Every payload and key of every snapshot under `root`, decoded (blocks are compressed on disk). */
async function snapshotRecords(root: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  for (const file of walk(root)) {
    const bytes = readFileSync(file);
    out.push(bytes);
    if (bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
      const decoder = new SnapshotDecoder(Readable.from([bytes]));
      for await (const batch of decoder.batches()) for (const e of batch) out.push(Buffer.from(e.key), Buffer.from(e.payload));
    }
  }
  return out;
}

/** Opens a payload that may be compressed, to be sure no compressed plaintext hides in it. */
function inflations(payload: Buffer): Buffer[] {
  const tries = [gunzipSync, inflateSync, inflateRawSync, brotliDecompressSync];
  const out: Buffer[] = [];
  for (const inflate of tries) {
    try {
      out.push(inflate(payload));
    } catch {
      // not that encoding
      continue;
    }
  }
  return out;
}

test.serial('Redis dump and snapshot files hold no token and no plaintext body', async (t) => {
  const snapshotDir = join(dir, 'redis');
  const mirror = await start({ ...PER_CREDENTIAL, MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: snapshotDir });
  await traffic(mirror);
  const client = new Redis(redis.url);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    t.true(keys.length >= 60, `${keys.length} keys`);
    for (const key of keys) {
      assertClean(t, Buffer.from(key), 'a Redis key');
      // strings (entries, bodies, marks) as stored; other types (the governor's counters) serialised
      const value = (await client.type(key)) === 'string' ? await client.getBuffer(key) : await client.dumpBuffer(key);
      if (value === null) continue;
      assertClean(t, value, 'a Redis value');
      for (const inflated of inflations(value)) assertClean(t, inflated, 'an inflated Redis value');
    }

    // Someone with write access to Redis but not the token: a forged value is a miss, never served.
    const entryKeys = keys.filter((k) => !k.includes('__'));
    const forged = entryKeys[0] as string;
    await client.set(forged, Buffer.from('GM forged entry'));
    const outcomes: Record<string, number> = {};
    for (const token of TOKENS) {
      for (let i = 0; i < 20; i++) {
        const answer = await fetchText(`${mirror.url}/repos/o/secret-${i}`, { headers: { authorization: token } });
        t.true(answer.text.includes(`${MARKER}-${i}`), 'every answer is the real body');
        const outcome = answer.headers.get('x-cache') ?? '';
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }
    t.deepEqual(outcomes, { ONLINE_HIT: 59, ONLINE_MISS: 1 }, 'the forged entry is a miss');
  } finally {
    client.disconnect();
  }

  const result = await mirror.snapshots?.snapshotNow();
  t.truthy(result);
  const records = await snapshotRecords(snapshotDir);
  t.true(records.length > 60);
  for (const record of records) {
    assertClean(t, record, 'a snapshot record');
    for (const inflated of inflations(record)) assertClean(t, inflated, 'an inflated snapshot record');
  }
});

test.serial('a memory-backed snapshot is sealed too, and restores into a new mirror that opens entries with the token', async (t) => {
  const snapshotDir = join(dir, 'memory');
  const env = { ...PER_CREDENTIAL, MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: snapshotDir };
  const first = await start(env);
  await traffic(first);
  await first.stop(); // graceful stop: the memory backend's final snapshot
  for (const record of await snapshotRecords(snapshotDir)) {
    assertClean(t, record, 'a snapshot record');
    for (const inflated of inflations(record)) assertClean(t, inflated, 'an inflated snapshot record');
  }
  const second = await start(env);
  github.resetCalls();
  const hit = await fetchText(`${second.url}/repos/o/secret-3`, { headers: { authorization: TOKENS[1] as string } });
  t.is(hit.headers.get('x-cache'), 'ONLINE_HIT');
  t.true(hit.text.includes(`${MARKER}-3`));
  t.is(github.quotaSpent(TOKENS[1]), 0);
  // another token never opens it: its own partition, its own miss
  const other = await fetchText(`${second.url}/repos/o/secret-3`, { headers: { authorization: 'token someone-else' } });
  t.is(other.headers.get('x-cache'), 'ONLINE_MISS');
});

/** Every key and value under `prefix` in Redis. */
async function redisDump(client: Redis, prefix: string): Promise<Array<{ key: string; value: Buffer }>> {
  const out: Array<{ key: string; value: Buffer }> = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      // the per-resource counts are hashes (body id → entries): their fields and numbers count as the value;
      // other types (the governor's slots, e.g. a lease's still in flight) serialised
      const type = await client.type(key);
      const value = type === 'hash' ? Buffer.from(JSON.stringify(await client.hgetall(key))) : type === 'string' ? await client.getBuffer(key) : await client.dumpBuffer(key);
      if (value !== null) out.push({ key, value });
    }
  } while (cursor !== '0');
  return out;
}

test.serial('shared bodies: Redis and snapshot files hold no token and no plaintext body; forged values are never served', async (t) => {
  const snapshotDir = join(dir, 'redis-shared');
  const prefix = 'shared:';
  const mirror = await start({ MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_REDIS_KEY_PREFIX: prefix, MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: snapshotDir });
  await traffic(mirror);
  const client = new Redis(redis.url);
  try {
    const dump = await redisDump(client, prefix);
    const kinds = (marker: string) => dump.filter((d) => d.key.includes(marker));
    t.is(kinds('}e:').length, 60, 'one entry per credential and resource');
    t.is(kinds('}b:').length, 20, 'one body per resource');
    for (const { key, value } of dump) {
      assertClean(t, Buffer.from(key), 'a Redis key');
      assertClean(t, value, 'a Redis value');
      for (const inflated of inflations(value)) assertClean(t, inflated, 'an inflated Redis value');
    }
    // a forged entry and a forged body, read by a replica that has not held them decoded yet: never
    // served, the answers stay the real bodies
    const replica = await start({ MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_REDIS_KEY_PREFIX: prefix });
    const forgedEntry = kinds('}e:')[0] as { key: string };
    await client.set(forgedEntry.key, Buffer.from('P1' + '0'.repeat(40) + 'GM forged entry'));
    const forgedBody = kinds('}b:')[1] as { key: string };
    await client.set(forgedBody.key, Buffer.from('S forged body'));
    const outcomes: Record<string, number> = {};
    for (const token of TOKENS) {
      for (let i = 0; i < 20; i++) {
        const answer = await fetchText(`${replica.url}/repos/o/secret-${i}`, { headers: { authorization: token } });
        t.true(answer.text.includes(`${MARKER}-${i}`), 'every answer is the real body');
        const outcome = answer.headers.get('x-cache') ?? '';
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }
    // the forged entry's credential is answered from a body GitHub confirmed to it (a hit); the first
    // credential of the forged body fetches it (the one miss), which repairs it for the two others
    t.deepEqual(outcomes, { ONLINE_HIT: 59, ONLINE_MISS: 1 }, 'forged values are misses');
  } finally {
    client.disconnect();
  }
  t.truthy(await mirror.snapshots?.snapshotNow());
  const records = await snapshotRecords(snapshotDir);
  t.true(records.length > 80);
  for (const record of records) {
    assertClean(t, record, 'a snapshot record');
    for (const inflated of inflations(record)) assertClean(t, inflated, 'an inflated snapshot record');
  }
});

test.serial('shared bodies: a memory-backed snapshot restores; another token gets a body only through its own free 304, a denied one never', async (t) => {
  const snapshotDir = join(dir, 'memory-shared');
  const env = { MIRROR_CACHE_BACKEND: 'memory', MIRROR_SNAPSHOT_STORE: 'file', MIRROR_SNAPSHOT_DIR: snapshotDir };
  const first = await start(env);
  await traffic(first);
  await first.stop();
  for (const record of await snapshotRecords(snapshotDir)) {
    assertClean(t, record, 'a snapshot record');
    for (const inflated of inflations(record)) assertClean(t, inflated, 'an inflated snapshot record');
  }
  const second = await start(env);
  github.resetCalls();
  const hit = await fetchText(`${second.url}/repos/o/secret-3`, { headers: { authorization: TOKENS[1] as string } });
  t.is(hit.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304', 'its own restored entry');
  t.true(hit.text.includes(`${MARKER}-3`));
  t.is(github.quotaSpent(TOKENS[1]), 0);
  const other = await fetchText(`${second.url}/repos/o/secret-3`, { headers: { authorization: 'token someone-else' } });
  t.is(other.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304; detail=shared', 'a restored body, confirmed by GitHub for this token');
  t.is(github.quotaSpent('token someone-else'), 0);
  github.setAccess('/repos/o/secret-4', { allow: TOKENS.slice(0, 3) });
  const denied = await fetchText(`${second.url}/repos/o/secret-4`, { headers: { authorization: 'token denied' } });
  t.is(denied.status, 404);
  t.false(denied.text.includes(MARKER));
  github.clearAccess();
});
