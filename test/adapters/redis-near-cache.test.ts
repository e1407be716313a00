/**
 * The Redis near cache against real redis-server processes: two RedisCache instances ("replicas")
 * on one server see each other's writes through Redis' invalidations; a second lookup of an
 * unchanged key sends no command; FLUSHALL, a killed subscriber and a restarted server drop
 * everything and the cache re-arms; the pending-read race (a write, and its invalidation, between
 * Redis answering a read and this process getting the reply) keeps nothing stale; copies end with
 * their keys' TTL; the byte bound holds; seal keys still isolate credentials.
 */
import test from 'ava';
import { RedisCache, type RedisCacheOptions } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { EventName } from '../../src/domain/events/events.js';
import type { CachedEntry } from '../../src/domain/model.js';
import { RecordingBus } from '../support/cache-traffic.js';
import { sleep, startRedis, startSentinelSet, waitFor, type RedisProcess } from '../support/redis-harness.js';

const SECRET = 'near-cache-secret';
const hasher = new HmacKeyHasher(SECRET);
const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function server(): Promise<RedisProcess> {
  const r = await startRedis();
  cleanups.push(() => r.stop());
  return r;
}

/** A replica's cache; the canary is slowed down so that command counts see lookups only. */
async function replica(url: string | undefined, options: Partial<RedisCacheOptions> = {}): Promise<RedisCache> {
  const c = new RedisCache({
    ...(url !== undefined ? { url } : {}),
    keyPrefix: 'nc:',
    // generous: the other test files' servers share these two cores
    commandTimeoutMs: 1500,
    maxReconnectDelayMs: 200,
    bodyKeys: new BodyKeys(SECRET),
    nearCacheBytes: 1 << 20,
    nearCacheCheckEveryMs: 60_000,
    ...options,
  });
  cleanups.push(() => c.close());
  await c.start();
  await waitFor('the near cache to arm', () => c.nearCacheStats()?.armed === true, 5000, 10);
  return c;
}

function entry(body: string, credential = 'token a', validatedAt = 1000): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json', etag: `W/"${body.slice(0, 8)}"`, 'x-oauth-scopes': `scopes of ${credential}` },
    body: Buffer.from(body),
    etag: `W/"${body.slice(0, 8)}"`,
    storedAt: validatedAt,
    validatedAt,
  };
}

const text = (e: { body: Uint8Array } | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());
const request = (path: string) => ({ method: 'GET', path, query: '', accept: '', apiVersion: '' });
const keyOf = (credential: string, path: string) => hasher.keyFor({ credential, ...request(path) });
const resourceOf = (path: string) => hasher.resourceKeyFor(request(path));
const sealOf = (credential: string) => hasher.sealKeyFor(credential);

/** Commands the server ran (INFO itself left out). */
async function commands(r: RedisProcess): Promise<number> {
  const info = await r.cli('INFO', 'commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) if (match[1] !== 'info') calls += Number(match[2]);
  return calls;
}

test('two replicas: A reads, B stores, A sees B’s value once the invalidation arrives; unchanged, A’s second lookup sends no command', async (t) => {
  const r = await server();
  const a = await replica(r.url);
  const b = await replica(r.url);
  const key = keyOf('token a', '/repos/o/r');
  const rk = resourceOf('/repos/o/r');
  await b.store(key, entry('v1'), 60, sealOf('token a'), rk);
  // A's first read learns which body the entry points at (a body key the lookup script did not
  // declare is not tracked by Redis 7.0: not kept); the second declares it and is kept
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(a.nearCacheStats()?.fills, 0);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(a.nearCacheStats()?.fills, 1);
  const before = await commands(r);
  for (let i = 0; i < 5; i += 1) t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(await commands(r), before, 'served from the near cache');
  t.is(a.nearCacheStats()?.hits, 5);

  await b.store(key, entry('v2'), 60, sealOf('token a'), rk);
  await waitFor('A to see B’s value', async () => text(await a.lookup(key, sealOf('token a'), rk)) === 'v2', 5000, 5);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v2');
  // B's forget reaches A the same way
  await b.forget(key, rk);
  await waitFor('A to see B’s forget', async () => (await a.lookup(key, sealOf('token a'), rk)) === undefined, 5000, 5);
});

test('the per-credential layout too; another credential’s seal key never gets a near copy; our own store is seen at once', async (t) => {
  const r = await server();
  const a = await replica(r.url, { bodyKeys: undefined });
  const b = await replica(r.url, { bodyKeys: undefined });
  const key = keyOf('token a', '/user');
  await a.store(key, entry('mine'), 60, sealOf('token a'));
  t.is(text(await a.lookup(key, sealOf('token a'))), 'mine');
  const before = await commands(r);
  t.is(text(await a.lookup(key, sealOf('token a'))), 'mine');
  t.is(await commands(r), before);
  t.is(await a.lookup(key, sealOf('token b')), undefined, 'another key does not open it');
  t.true((await commands(r)) > before, 'and asked Redis');

  await a.store(key, entry('mine, again'), 60, sealOf('token a'));
  t.is(text(await a.lookup(key, sealOf('token a'))), 'mine, again', 'no wait for our own write');
  t.is(text(await b.lookup(key, sealOf('token a'))), 'mine, again');
  await b.store(key, entry('from b'), 60, sealOf('token a'));
  await waitFor('A to see B’s value', async () => text(await a.lookup(key, sealOf('token a'))) === 'from b', 5000, 5);
});

test('the shared body’s change reaches every entry that held it; FLUSHALL drops everything', async (t) => {
  const r = await server();
  const a = await replica(r.url);
  const rk = resourceOf('/repos/o/shared');
  const keys = ['token a', 'token b', 'token c'].map((credential) => ({ credential, key: keyOf(credential, '/repos/o/shared') }));
  for (const { credential, key } of keys) await a.store(key, entry('body', credential), 60, sealOf(credential), rk);
  for (const { credential, key } of keys) t.is(text(await a.lookup(key, sealOf(credential), rk)), 'body');
  t.is(a.nearCacheStats()?.entries, 3);
  // the body's key changes under the entries (another replica's TTL extension, or tampering): all three go
  const bodies = (await r.cli('--scan', '--pattern', 'nc:{*}b:*')).split('\n').filter(Boolean);
  t.is(bodies.length, 1);
  await r.cli('PEXPIRE', bodies[0] as string, '120000');
  await waitFor('the body’s invalidation', () => a.nearCacheStats()?.entries === 0, 5000, 5);

  for (const { credential, key } of keys) t.is(text(await a.lookup(key, sealOf(credential), rk)), 'body');
  t.is(a.nearCacheStats()?.entries, 3);
  await r.cli('FLUSHALL');
  await waitFor('the flush', () => a.nearCacheStats()?.entries === 0, 5000, 5);
  for (const { credential, key } of keys) t.is(await a.lookup(key, sealOf(credential), rk), undefined);
});

test('a killed subscriber connection: lookups go to Redis until tracking is on again, then the near cache serves again', async (t) => {
  const r = await server();
  const events = new RecordingBus();
  const a = await replica(r.url, { events });
  const b = await replica(r.url);
  const key = keyOf('token a', '/repos/o/k');
  const rk = resourceOf('/repos/o/k');
  await a.store(key, entry('v1'), 60, sealOf('token a'), rk);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(a.nearCacheStats()?.entries, 1);

  await r.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await waitFor('disarmed', () => a.nearCacheStats()?.armed === false, 5000, 2);
  t.is(a.nearCacheStats()?.entries, 0, 'everything dropped');
  t.true(events.named(EventName.cacheNearCache).some((e) => e.state === 'disarmed' && e.reason === 'invalidations_lost'));
  // a write while it re-arms is not missed
  await b.store(key, entry('v2'), 60, sealOf('token a'), rk);
  await waitFor('re-armed', () => a.nearCacheStats()?.armed === true, 5000, 5);
  // the first read learns the new body (a body key the script did not declare is not tracked: not kept), the second keeps it
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v2');
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v2');
  const before = await commands(r);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v2');
  t.is(await commands(r), before, 'served near again');
  await b.store(key, entry('v3'), 60, sealOf('token a'), rk);
  await waitFor('A to see v3', async () => text(await a.lookup(key, sealOf('token a'), rk)) === 'v3', 5000, 5);

  // the tracked connection killed: its tracking is gone with it
  await r.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  await waitFor('disarmed again', () => a.nearCacheStats()?.armed === false, 5000, 2);
  // (every normal connection was killed: the writers too)
  await waitFor('re-armed again', () => a.nearCacheStats()?.armed === true && b.nearCacheStats()?.armed === true && a.isReady() && b.isReady(), 10_000, 5);
  await waitFor('A’s lookup on its new connections', async () => text(await a.lookup(key, sealOf('token a'), rk).catch(() => undefined)) === 'v3', 5000, 10);
  await waitFor('B’s store on its new writer', () => b.store(key, entry('v4'), 60, sealOf('token a'), rk).then(() => true, () => false), 5000, 10);
  await waitFor('A to see v4', async () => text(await a.lookup(key, sealOf('token a'), rk)) === 'v4', 5000, 5);
});

test('a restarted redis-server: nothing is served from the near cache while it is down, nor after (it lost its data)', async (t) => {
  const r = await server();
  const a = await replica(r.url);
  const key = keyOf('token a', '/repos/o/restart');
  const rk = resourceOf('/repos/o/restart');
  await a.store(key, entry('before'), 60, sealOf('token a'), rk);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'before');
  r.kill();
  await r.exited();
  await waitFor('disarmed', () => a.nearCacheStats()?.armed === false, 5000, 2);
  await t.throwsAsync(a.lookup(key, sealOf('token a'), rk), undefined, 'a lookup asks Redis (and fails), not the near cache');
  await r.restart();
  await waitFor('re-armed', () => a.nearCacheStats()?.armed === true, 10_000, 10);
  t.is(await a.lookup(key, sealOf('token a'), rk), undefined, 'Redis came back empty');
  await a.store(key, entry('after'), 60, sealOf('token a'), rk);
  // (the first read after our store may be voided by the store's own invalidation: the miss above tracked the key)
  for (let i = 0; i < 3; i += 1) t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'after');
  t.true((a.nearCacheStats()?.hits ?? 0) >= 1, JSON.stringify(a.nearCacheStats()));
});

test('the pending-read race: a write between Redis answering the read and this process getting the reply keeps nothing stale', async (t) => {
  const r = await server();
  const a = await replica(r.url);
  const b = await replica(r.url);
  const key = keyOf('token a', '/repos/o/race');
  const rk = resourceOf('/repos/o/race');
  await b.store(key, entry('old'), 60, sealOf('token a'), rk);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'old'); // learns the body
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'old'); // kept
  t.is(a.nearCacheStats()?.entries, 1);
  // B rewrites the entry on the same body: A's copy goes, the body A knows stays the same
  await b.store(key, entry('old', 'token a', 2000), 60, sealOf('token a'), rk);
  await waitFor('A’s copy to go', () => a.nearCacheStats()?.entries === 0, 5000, 1);
  // hold A's reply until B has written and A's subscriber has had the invalidation
  const reads = (a as unknown as { nearReads: Record<string, (...args: unknown[]) => Promise<unknown>> }).nearReads;
  const original = reads.ghmSharedLookupBuffer as (...args: unknown[]) => Promise<unknown>;
  let raced = false;
  reads.ghmSharedLookupBuffer = async (...args: unknown[]) => {
    const reply = await original.apply(reads, args);
    if (!raced) {
      raced = true;
      const seen = a.nearCacheStats()?.invalidations ?? 0;
      await b.store(key, entry('new'), 60, sealOf('token a'), rk);
      await waitFor('A’s invalidation', () => (a.nearCacheStats()?.invalidations ?? 0) > seen, 5000, 1);
    }
    return reply;
  };
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'old', 'the read returns what Redis answered');
  t.is(a.nearCacheStats()?.voided, 1);
  t.is(a.nearCacheStats()?.entries, 0, 'but it was not kept');
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'new');
});

test('a near copy ends with its key’s TTL even when Redis has not expired the key yet', async (t) => {
  const r = await server();
  const a = await replica(r.url);
  await r.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '0'); // no invalidation on expiry until the key is touched
  const key = keyOf('token a', '/repos/o/ttl');
  const rk = resourceOf('/repos/o/ttl');
  const storedAt = Date.now();
  await a.store(key, entry('short'), 1, sealOf('token a'), rk);
  await waitFor('a near hit', async () => text(await a.lookup(key, sealOf('token a'), rk)) === 'short' && (a.nearCacheStats()?.hits ?? 0) >= 1, 800, 10);
  t.is(a.nearCacheStats()?.entries, 1, 'held');
  await sleep(Math.max(0, storedAt + 1050 - Date.now()));
  t.is(await a.lookup(key, sealOf('token a'), rk), undefined);
  t.is(a.nearCacheStats()?.entries, 0);
});

test('bounded by bytes: copies beyond nearCacheBytes are evicted', async (t) => {
  const r = await server();
  const a = await replica(r.url, { nearCacheBytes: 64 * 1024 });
  const rk = resourceOf('/repos/o/many');
  const body = 'b'.repeat(3000);
  for (let i = 0; i < 60; i += 1) {
    const credential = `token ${i}`;
    await a.store(keyOf(credential, '/repos/o/many'), entry(body, credential), 60, sealOf(credential), rk);
    t.is(text(await a.lookup(keyOf(credential, '/repos/o/many'), sealOf(credential), rk)), body);
  }
  const stats = a.nearCacheStats();
  t.true(stats !== undefined && stats.bytes <= 64 * 1024 && stats.evictions > 0 && stats.entries < 60, JSON.stringify(stats));
});

test('off for 0 bytes and with a reader endpoint: no extra connections, lookups as before', async (t) => {
  const r = await server();
  const off = new RedisCache({ url: r.url, keyPrefix: 'nc:', commandTimeoutMs: 500, nearCacheBytes: 0 });
  cleanups.push(() => off.close());
  await off.start();
  const withReader = new RedisCache({ url: r.url, readerUrl: r.url, keyPrefix: 'nc:', commandTimeoutMs: 500, nearCacheBytes: 1 << 20 });
  cleanups.push(() => withReader.close());
  await withReader.start();
  t.is(off.nearCacheStats(), undefined);
  t.is(withReader.nearCacheStats(), undefined);
  const clients = await r.cli('CLIENT', 'LIST');
  t.is(clients.split('\n').filter((line) => line.includes('cmd=subscribe')).length, 0);
});

test('the canary: tracking turned off behind the cache’s back (no invalidation would come) disarms it, and it re-arms', async (t) => {
  const r = await server();
  const events = new RecordingBus();
  const a = await replica(r.url, { events, nearCacheCheckEveryMs: 100, commandTimeoutMs: 300 }); // the canary waits max(1 s, 5 × 300 ms)
  // turn tracking off behind the cache's back: invalidations stop, only the canary can tell
  const reads = (a as unknown as { nearReads: { client: (...args: string[]) => Promise<unknown> } }).nearReads;
  await reads.client('TRACKING', 'off');
  await waitFor('the check to disarm', () => events.named(EventName.cacheNearCache).some((e) => e.state === 'disarmed' && e.reason === 'check_failed'), 10_000, 10);
  await waitFor('re-armed', () => a.nearCacheStats()?.armed === true, 10_000, 10);
  t.pass();
});

test('an ACL user: with subscribe and &__redis__:invalidate it arms; without, lookups go to Redis and the refusal is told once, no reconnect loop', async (t) => {
  const r = await server();
  const base = ['on', '>pw', '~nc:*', '+@read', '+@write', '+@scripting', '+@connection', '+dbsize', '+info'];
  await r.cli('ACL', 'SETUSER', 'near', ...base, '+subscribe', '&__redis__:invalidate');
  await r.cli('ACL', 'SETUSER', 'plain', ...base);
  const allowed = await replica(r.url, { username: 'near', password: 'pw' });
  const key = keyOf('token a', '/repos/o/acl');
  const rk = resourceOf('/repos/o/acl');
  await allowed.store(key, entry('v'), 60, sealOf('token a'), rk);
  for (let i = 0; i < 3; i += 1) t.is(text(await allowed.lookup(key, sealOf('token a'), rk)), 'v');
  t.true((allowed.nearCacheStats()?.hits ?? 0) >= 1);

  const events = new RecordingBus();
  const refused = new RedisCache({ url: r.url, username: 'plain', password: 'pw', keyPrefix: 'nc:', commandTimeoutMs: 500, bodyKeys: new BodyKeys(SECRET), nearCacheBytes: 1 << 20, events });
  cleanups.push(() => refused.close());
  await refused.start();
  await waitFor('the refusal', () => events.named(EventName.cacheNearCache).some((e) => e.state === 'refused'), 5000, 10);
  const refusal = events.named(EventName.cacheNearCache).find((e) => e.state === 'refused');
  t.regex(refusal?.message ?? '', /NOPERM/);
  t.false(refusal?.message?.includes('pw') ?? true);
  for (let i = 0; i < 3; i += 1) t.is(text(await refused.lookup(key, sealOf('token a'), rk)), 'v');
  t.is(refused.nearCacheStats()?.hits, 0);
  await sleep(300);
  t.is(events.named(EventName.cacheConnection).filter((e) => e.state === 'lost').length, 0, 'the subscriber is not reconnected over and over');
  t.is(events.named(EventName.cacheNearCache).filter((e) => e.state === 'refused').length, 1);
});

test('sentinel: a failover disarms; on the new master it re-arms and sees another replica’s writes', async (t) => {
  const set = await startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 3000 });
  cleanups.push(() => set.stop());
  const options = { sentinels: set.sentinelAddrs, sentinelName: set.name, commandTimeoutMs: 300 };
  const a = await replica(undefined, options);
  const b = await replica(undefined, options);
  const key = keyOf('token a', '/repos/o/failover');
  const rk = resourceOf('/repos/o/failover');
  await b.store(key, entry('v1'), 60, sealOf('token a'), rk);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1');
  t.is(a.nearCacheStats()?.entries, 1);
  await waitFor('replicated', async () => (await set.replica.cli('DBSIZE')) !== '0', 5000, 20);
  set.master.kill('SIGKILL');
  await waitFor('disarmed', () => a.nearCacheStats()?.armed === false, 5000, 5);
  await waitFor('sentinel failover', async () => (await set.currentMasterPort()) === set.replica.port, 20_000, 100);
  await waitFor('both re-armed on the new master', () => a.nearCacheStats()?.armed === true && b.nearCacheStats()?.armed === true, 20_000, 20);
  t.is(text(await a.lookup(key, sealOf('token a'), rk)), 'v1', 'replicated');
  await waitFor('written on the new master', async () => {
    try {
      await b.store(key, entry('v2'), 60, sealOf('token a'), rk);
      return true;
    } catch {
      return false;
    }
  }, 10_000, 50);
  await waitFor('A to see v2', async () => text(await a.lookup(key, sealOf('token a'), rk)) === 'v2', 5000, 5);
});
