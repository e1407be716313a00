/**
 * The Redis dump and lease against real redis-server processes (standalone and a 3-master cluster):
 * SCAN on every master (never KEYS), values and TTLs as Redis holds them, restore with NX, the
 * reserved lease keys left out, leases exclusive and expiring, and snapshots moving between backends.
 */
import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisCacheDump, prefixPattern } from '../../src/adapters/cache/redis/redis-dump.adapter.js';
import { RedisLease } from '../../src/adapters/lease/redis-lease.adapter.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump } from '../../src/adapters/snapshot/memory-cache-dump.adapter.js';
import type { CachedEntry } from '../../src/domain/model.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';
import { startCluster, startRedis, sleep, type RedisClusterSet, type RedisProcess } from '../support/redis-harness.js';

const PREFIX = 'snap:';
let redis: RedisProcess;
let cluster: RedisClusterSet;
const clients: Array<Redis | Cluster> = [];
const caches: RedisCache[] = [];

test.before(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startCluster()]);
});

test.after.always(async () => {
  for (const c of caches) await c.close();
  for (const c of clients) c.disconnect();
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

function standaloneClient(): Redis {
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: false, maxRetriesPerRequest: 1 });
  clients.push(client);
  return client;
}

async function clusterClient(): Promise<Cluster> {
  const client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
  return client;
}

async function redisCache(options: { url?: string; clusterNodes?: { host: string; port: number }[] }): Promise<RedisCache> {
  const cache = new RedisCache({ keyPrefix: PREFIX, commandTimeoutMs: 2000, ...options });
  caches.push(cache);
  await cache.start();
  return cache;
}

function entry(n: number): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json', etag: `"${n}"` },
    body: Buffer.from(JSON.stringify({ n, text: 'r'.repeat(300) })),
    etag: `"${n}"`,
    storedAt: n,
    validatedAt: n,
  };
}

async function collect(dump: RedisCacheDump): Promise<DumpedEntry[]> {
  const out: DumpedEntry[] = [];
  for await (const batch of dump.entries()) out.push(...batch);
  return out;
}

const body = (e: CachedEntry | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());

test.serial('standalone: the dump holds exactly our entries with their TTLs, found by SCAN, never KEYS', async (t) => {
  const client = standaloneClient();
  await client.flushall();
  await client.config('RESETSTAT');
  const cache = await redisCache({ url: `redis://127.0.0.1:${redis.port}` });
  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX, batchEntries: 50, scanCount: 100 });
  t.true(await dump.isEmpty());
  await client.set('other-app:key', 'not ours');
  await client.set(`${PREFIX}__lease:snapshot`, 'replica-1', 'PX', 60_000);
  await client.hset(`${PREFIX}somehash`, 'f', 'v');
  t.true(await dump.isEmpty(), 'foreign keys, lease keys and non-strings do not count');
  for (let i = 0; i < 700; i++) await cache.store(`k${i}`, entry(i), i < 100 ? 30 : 3600);
  t.false(await dump.isEmpty());

  const out = await collect(dump);
  t.is(out.length, 700);
  t.deepEqual(new Set(out.map((e) => e.key)).size, 700);
  t.true(out.every((e) => !e.key.startsWith(PREFIX)), 'keys without the prefix');
  const k5 = out.find((e) => e.key === 'k5')!;
  t.true(k5.ttlMs > 25_000 && k5.ttlMs <= 30_000);
  const k500 = out.find((e) => e.key === 'k500')!;
  t.true(k500.ttlMs > 3_500_000);
  t.deepEqual(Buffer.from(k500.payload), await client.getBuffer(`${PREFIX}k500`), 'the payload is the value as Redis holds it');

  const stats = await client.info('commandstats');
  t.regex(stats, /cmdstat_scan:/);
  t.notRegex(stats, /cmdstat_keys:/);
});

test.serial('standalone: restore writes absent keys with their TTL and never replaces a present one', async (t) => {
  const client = standaloneClient();
  await client.flushall();
  const cache = await redisCache({ url: `redis://127.0.0.1:${redis.port}` });
  for (let i = 0; i < 50; i++) await cache.store(`k${i}`, entry(i), 600);
  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX });
  const snapshot = await collect(dump);
  await client.flushall();
  await cache.store('k7', { ...entry(7), body: Buffer.from('newer') }, 600);
  const written = await dump.restoreIfAbsent(snapshot.map((e) => ({ ...e, ttlMs: 20_000 })));
  t.is(written, 49);
  t.is(body(await cache.lookup('k7')), 'newer');
  t.is(body(await cache.lookup('k8')), body(entry(8)));
  const ttl = await client.pttl(`${PREFIX}k8`);
  t.true(ttl > 15_000 && ttl <= 20_000);
});

test.serial('a glob character in the prefix is matched literally', (t) => {
  t.is(prefixPattern('a*b?[c]\\:'), 'a\\*b\\?\\[c\\]\\\\:*');
});

test.serial('cluster: SCAN on every master finds every entry; restore lands each key on its node', async (t) => {
  const client = await clusterClient();
  await Promise.all(client.nodes('master').map((node) => node.flushall()));
  const cache = await redisCache({ clusterNodes: cluster.startupNodes });
  for (let i = 0; i < 600; i++) await cache.store(`k${i}`, entry(i), 600);
  const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
  t.is(perMaster.length, 3);
  t.true(perMaster.every((n) => n > 100), `keys spread over the masters: ${perMaster.join(', ')}`);

  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX, batchEntries: 64 });
  const out = await collect(dump);
  t.is(out.length, 600);
  t.is(new Set(out.map((e) => e.key)).size, 600);

  await Promise.all(client.nodes('master').map((node) => node.flushall()));
  t.true(await dump.isEmpty());
  t.is(await dump.restoreIfAbsent(out), 600);
  t.is(body(await cache.lookup('k123')), body(entry(123)));
  t.is(await dump.restoreIfAbsent(out), 0, 'second time: all present');
});

test.serial('leases: one holder at a time, only the holder renews or releases, expiry frees it', async (t) => {
  const client = standaloneClient();
  const a = new RedisLease({ client, keyPrefix: PREFIX, owner: 'replica-a' });
  const b = new RedisLease({ client, keyPrefix: PREFIX, owner: 'replica-b' });
  await client.del(a.key('snapshot'));
  t.true(await a.acquire('snapshot', 300));
  t.false(await b.acquire('snapshot', 300));
  t.false(await b.renew('snapshot', 10_000));
  await b.release('snapshot');
  t.is(await a.holder('snapshot'), 'replica-a', 'b cannot drop a’s lease');
  t.true(await a.renew('snapshot', 300));
  await sleep(400);
  t.true(await b.acquire('snapshot', 10_000), 'expired: free for the next');
  t.false(await a.renew('snapshot', 10_000), 'a lost it');
  await b.release('snapshot');
  t.is(await b.holder('snapshot'), undefined);
  t.true(a.key('snapshot').startsWith(`${PREFIX}__`), 'in the namespace snapshots skip');
});

test.serial('a memory snapshot restores into Redis and back: same entry codec', async (t) => {
  const client = standaloneClient();
  await client.flushall();
  const memory = new MemoryCache({ maxBytes: 10_000_000 });
  for (let i = 0; i < 30; i++) memory.set(`m${i}`, entry(i), 600);
  const fromMemory: DumpedEntry[] = [];
  for await (const batch of new MemoryCacheDump(memory).entries()) fromMemory.push(...batch);
  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX });
  t.is(await dump.restoreIfAbsent(fromMemory), 30);
  const cache = await redisCache({ url: `redis://127.0.0.1:${redis.port}` });
  t.is(body(await cache.lookup('m12')), body(entry(12)));

  const back = new MemoryCache({ maxBytes: 10_000_000 });
  t.is(await new MemoryCacheDump(back).restoreIfAbsent(await collect(dump)), 30);
  t.is(body(back.get('m29')), body(entry(29)));
});

test.serial('standalone: the restored mark is a reserved key without TTL, gone with a FLUSHALL, not dumped', async (t) => {
  const client = standaloneClient();
  await client.flushall();
  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX });
  t.false(await dump.isMarkedRestored());
  await dump.markRestored();
  t.true(await dump.isMarkedRestored());
  const marks = await client.keys(`${PREFIX}__restored*`);
  t.is(marks.length, 1);
  t.is(await client.pttl(marks[0]!), -1);
  t.true(await dump.isEmpty(), 'the mark is not an entry');
  t.is((await collect(dump)).length, 0);
  await client.flushall();
  t.false(await dump.isMarkedRestored());
});

test.serial('cluster: one mark per master, so a master that lost its data alone is noticed', async (t) => {
  const client = await clusterClient();
  await Promise.all(client.nodes('master').map((node) => node.flushall()));
  const dump = new RedisCacheDump({ client, keyPrefix: PREFIX });
  await dump.markRestored();
  t.true(await dump.isMarkedRestored());
  const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
  t.deepEqual(perMaster, [1, 1, 1], 'each master holds its own mark');
  await client.nodes('master')[1]!.flushall();
  t.false(await dump.isMarkedRestored());
  await dump.markRestored();
  t.true(await dump.isMarkedRestored());
});
