/**
 * RedisCache in the shared layout (cache.shareAcrossCredentials) against real Redis servers: one body
 * per resource whatever the number of credentials, entries sealed per credential, representations
 * without any credential's headers, a dangling pointer or a damaged body a miss (never an error),
 * body TTLs no shorter than their entries', lookups on a reader replica, and a Redis Cluster where
 * every resource keeps its entries, bodies and index in one slot.
 */
import test from 'ava';
import { RedisCache, type RedisCacheOptions } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import type { CachedEntry } from '../../src/domain/model.js';
import { RecordingBus } from '../support/cache-traffic.js';
import { startCluster, startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';

const SECRET = 'shared-layout-secret';
const hasher = new HmacKeyHasher(SECRET);
const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function server(options: Parameters<typeof startRedis>[0] = {}): Promise<RedisProcess> {
  const r = await startRedis(options);
  cleanups.push(() => r.stop());
  return r;
}

async function cache(options: Partial<RedisCacheOptions>): Promise<RedisCache> {
  const c = new RedisCache({ keyPrefix: 'sh:', commandTimeoutMs: 500, maxReconnectDelayMs: 200, bodyKeys: new BodyKeys(SECRET), ...options });
  cleanups.push(() => c.close());
  await c.start();
  return c;
}

function entry(body: string, credential: string, validatedAt = 1000): CachedEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag: `W/"${credential}"`, 'x-oauth-scopes': `scopes of ${credential}`, vary: 'Accept, Authorization, Cookie' },
    body: Buffer.from(body),
    etag: `W/"${credential}"`,
    storedAt: validatedAt,
    validatedAt,
  };
}

const text = (e: { body: Uint8Array } | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());
const keyOf = (credential: string, path: string) => hasher.keyFor({ credential, method: 'GET', path, query: '', accept: '', apiVersion: '' });
const resourceOf = (path: string) => hasher.resourceKeyFor({ method: 'GET', path, query: '', accept: '', apiVersion: '' });

async function keysOf(r: RedisProcess, pattern: string): Promise<string[]> {
  const out = await r.cli('--scan', '--pattern', pattern);
  return out.split('\n').filter((line) => line !== '');
}

test('100 credentials, one resource: one body, 100 sealed entries, one index; each entry keeps its own headers', async (t) => {
  const r = await server();
  const c = await cache({ url: r.url });
  const body = JSON.stringify({ repo: 'shared', padding: 'p'.repeat(4000) });
  const rk = resourceOf('/repos/o/shared');
  for (let i = 0; i < 100; i += 1) {
    const credential = `token t${i}`;
    await c.store(keyOf(credential, '/repos/o/shared'), entry(body, credential), 60, hasher.sealKeyFor(credential), rk);
  }
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 1);
  t.is((await keysOf(r, 'sh:{*}e:*')).length, 100);
  t.is((await keysOf(r, 'sh:{*}i')).length, 1);
  const got = await c.lookup(keyOf('token t42', '/repos/o/shared'), hasher.sealKeyFor('token t42'), rk);
  t.is(text(got), body);
  t.is(got?.etag, 'W/"token t42"');
  t.is(got?.headers['x-oauth-scopes'], 'scopes of token t42');
  t.is(await c.lookup(keyOf('token t42', '/repos/o/shared'), hasher.sealKeyFor('token t43'), rk), undefined, 'another credential’s key does not open it');
  const stats = await c.stats();
  t.true(stats.layout !== undefined && stats.layout.estimated);
  t.true((stats.layout?.entries ?? 0) > (stats.layout?.bodies ?? 0), JSON.stringify(stats));
});

test('an entry keeps its own headers only; equal credential headers stay its own; a fresh process joins them too', async (t) => {
  const r = await server();
  const c = await cache({ url: r.url });
  const rk = resourceOf('/repos/o/headers');
  const same = (credential: string): CachedEntry => ({ ...entry('{"h":1}', credential), headers: { ...entry('{"h":1}', credential).headers, 'x-oauth-scopes': 'repo', link: '<x>; rel="next"' } });
  await c.store(keyOf('token h1', '/repos/o/headers'), same('token h1'), 60, hasher.sealKeyFor('token h1'), rk);
  await c.store(keyOf('token h2', '/repos/o/headers'), same('token h2'), 60, hasher.sealKeyFor('token h2'), rk);
  for (const reader of [c, await cache({ url: r.url })]) {
    const got = await reader.lookup(keyOf('token h2', '/repos/o/headers'), hasher.sealKeyFor('token h2'), rk);
    t.is(got?.headers['x-oauth-scopes'], 'repo');
    t.is(got?.headers['link'], '<x>; rel="next"');
    t.is(got?.headers['etag'], 'W/"token h2"');
    t.is(got?.etag, 'W/"token h2"');
  }
  const rep = (await c.representations(rk, 1))[0];
  t.is(rep?.headers['x-oauth-scopes'], undefined);
  t.is(rep?.headers['link'], '<x>; rel="next"');
});

test('representations: newest first, at most the limit, no credential header; a fresh process reads them too', async (t) => {
  const r = await server();
  const c = await cache({ url: r.url });
  const rk = resourceOf('/repos/o/perm');
  for (const [i, admin] of [false, true, false, true, false].entries()) {
    const credential = `token p${i}`;
    await c.store(keyOf(credential, '/repos/o/perm'), entry(JSON.stringify({ admin, n: admin ? 1 : 0 }), credential, 1000 + i), 60, hasher.sealKeyFor(credential), rk);
  }
  const reps = await (await cache({ url: r.url })).representations(rk, 4);
  t.deepEqual(reps.map((rep) => text(rep)), ['{"admin":false,"n":0}', '{"admin":true,"n":1}'], 'two distinct bodies, the last validated first');
  t.is(reps[0]?.validatedAt, 1004);
  t.is(reps[1]?.validatedAt, 1003);
  for (const rep of reps) {
    t.is(rep.headers['x-oauth-scopes'], undefined);
    t.is(rep.headers['etag'], undefined);
    t.is(rep.headers['vary'], 'Accept, Authorization, Cookie');
  }
  t.is((await c.representations(rk, 1)).length, 1);
  t.deepEqual(await c.representations(resourceOf('/nothing'), 4), []);
});

test('a body TTL is never shorter than its newest entry’s; a dangling pointer or a damaged body is a miss, and a store repairs it', async (t) => {
  const r = await server();
  const bus = new RecordingBus();
  const c = await cache({ url: r.url, events: bus });
  const rk = resourceOf('/repos/o/ttl');
  const body = '{"ttl":true}';
  await c.store(keyOf('token a', '/repos/o/ttl'), entry(body, 'token a'), 100, hasher.sealKeyFor('token a'), rk);
  await c.store(keyOf('token b', '/repos/o/ttl'), entry(body, 'token b'), 300, hasher.sealKeyFor('token b'), rk);
  const [bodyKey] = await keysOf(r, 'sh:{*}b:*');
  const [entryB] = (await keysOf(r, 'sh:{*}e:*')).filter((k) => k.includes(keyOf('token b', '/repos/o/ttl')));
  t.true(Number(await r.cli('PTTL', bodyKey as string)) >= Number(await r.cli('PTTL', entryB as string)) - 50);

  // a fresh process (nothing memoized): the body vanishes (eviction) → a miss, not an error
  const fresh = await cache({ url: r.url, events: bus });
  await r.cli('DEL', bodyKey as string);
  t.is(await fresh.lookup(keyOf('token a', '/repos/o/ttl'), hasher.sealKeyFor('token a'), rk), undefined);
  t.deepEqual(await fresh.representations(rk, 4), []);
  // damaged bytes under the body's name: a miss and a corrupt event
  await r.cli('SET', bodyKey as string, 'S garbage');
  t.is(await fresh.lookup(keyOf('token a', '/repos/o/ttl'), hasher.sealKeyFor('token a'), rk), undefined);
  t.true(bus.named('cache.corrupt').length >= 1);
  // the next store (a 200 for that credential) writes the body again
  await fresh.store(keyOf('token a', '/repos/o/ttl'), entry(body, 'token a'), 100, hasher.sealKeyFor('token a'), rk);
  const again = await cache({ url: r.url });
  t.is(text(await again.lookup(keyOf('token b', '/repos/o/ttl'), hasher.sealKeyFor('token b'), rk)), body, 'repaired for every entry');
  await again.forget(keyOf('token b', '/repos/o/ttl'), rk);
  t.is(await again.lookup(keyOf('token b', '/repos/o/ttl'), hasher.sealKeyFor('token b'), rk), undefined);
});

test('a body goes when the last entry known to point at it leaves it (a change, a forget); an uncounted one waits for its TTL', async (t) => {
  const r = await server();
  const c = await cache({ url: r.url });
  const rk = resourceOf('/repos/o/changes');
  const credentials = ['token c1', 'token c2', 'token c3'];
  const store = (credential: string, body: string) => c.store(keyOf(credential, '/repos/o/changes'), entry(body, credential), 60, hasher.sealKeyFor(credential), rk);
  for (const credential of credentials) await store(credential, '{"v":1}');
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 1);
  await store('token c1', '{"v":2}');
  await store('token c2', '{"v":2}');
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 2, 'v1 still has c3');
  await store('token c3', '{"v":2}');
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 1, 'v1 left by its last entry');
  t.deepEqual((await c.representations(rk, 4)).map((rep) => text(rep)), ['{"v":2}'], 'and off the index');
  for (const credential of credentials) await c.forget(keyOf(credential, '/repos/o/changes'), rk);
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 0, 'the last forget takes the body away');

  // a body nobody counted (restored from a snapshot: counts are not in snapshots) is left to its TTL
  await store('token c1', '{"v":3}');
  await r.cli('DEL', `sh:{${rk}}n`);
  await store('token c1', '{"v":4}');
  t.is((await keysOf(r, 'sh:{*}b:*')).length, 2);
});

test('the lookup and representations scripts run on a reader replica', async (t) => {
  const primary = await server();
  const replica = await server({ replicaOf: { host: '127.0.0.1', port: primary.port } });
  await waitFor('replica link', async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'), 20000);
  const c = await cache({ url: primary.url, readerUrl: replica.url });
  const rk = resourceOf('/repos/o/read');
  await c.store(keyOf('token r', '/repos/o/read'), entry('{"read":1}', 'token r'), 60, hasher.sealKeyFor('token r'), rk);
  await waitFor('replicated', async () => (await keysOf(replica, 'sh:{*}i')).length === 1, 10000);
  await replica.cli('CONFIG', 'RESETSTAT');
  const reader = await cache({ url: primary.url, readerUrl: replica.url });
  t.is(text(await reader.lookup(keyOf('token r', '/repos/o/read'), hasher.sealKeyFor('token r'), rk)), '{"read":1}');
  t.is((await reader.representations(rk, 4)).length, 1);
  t.regex(await replica.cli('INFO', 'commandstats'), /cmdstat_(evalsha|eval):calls=\d+/);
});

test('cluster: a resource’s entries, bodies and index share one slot; resources spread over the masters', async (t) => {
  const cluster = await startCluster({ nodeTimeoutMs: 2000 });
  cleanups.push(() => cluster.stop());
  const c = await cache({ clusterNodes: cluster.startupNodes.slice(0, 2), keyPrefix: 'cs:' });
  t.is(c.topology, 'cluster');
  for (let i = 0; i < 30; i += 1) {
    const path = `/repos/o/c${i}`;
    for (const credential of ['token x', 'token y', 'token z']) {
      await c.store(keyOf(credential, path), entry(JSON.stringify({ i }), credential), 60, hasher.sealKeyFor(credential), resourceOf(path));
    }
  }
  for (let i = 0; i < 30; i += 1) {
    const path = `/repos/o/c${i}`;
    t.is(text(await c.lookup(keyOf('token y', path), hasher.sealKeyFor('token y'), resourceOf(path))), JSON.stringify({ i }));
    t.is((await c.representations(resourceOf(path), 4)).length, 1);
  }
  const masters = await cluster.masterPorts();
  const byPort = new Map(cluster.nodes.map((n) => [n.port, n]));
  let groups = 0;
  for (const port of masters) {
    const node = byPort.get(port) as RedisProcess;
    const keys = (await node.cli('--scan', '--pattern', 'cs:*')).split('\n').filter((k) => k !== '');
    t.true(keys.length > 0, `master ${port} holds keys`);
    // every key of a resource is on the node that holds its index
    const tags = new Set(keys.map((k) => k.slice(k.indexOf('{'), k.indexOf('}') + 1)));
    for (const tag of tags) t.is(keys.filter((k) => k.startsWith(`cs:${tag}`)).length, 6, `${tag}: 3 entries, 1 body, 1 index, 1 count hash on one node`);
    groups += tags.size;
  }
  t.is(groups, 30);
});

test('a pointer read again unchanged is not opened again; changed, forged or asked with another key, it is', async (t) => {
  const r = await server();
  const bus = new RecordingBus();
  const c = await cache({ url: r.url, events: bus });
  const rk = resourceOf('/repos/o/reread');
  const key = keyOf('token r', '/repos/o/reread');
  const body = '{"reread":1}';
  await c.store(key, entry(body, 'token r', 1000), 60, hasher.sealKeyFor('token r'), rk);
  t.is((await c.lookup(key, hasher.sealKeyFor('token r'), rk))?.validatedAt, 1000);
  t.is((await c.lookup(key, hasher.sealKeyFor('token r'), rk))?.validatedAt, 1000, 'the same bytes, the same entry');
  t.is(await c.lookup(key, hasher.sealKeyFor('token other'), rk), undefined, 'the bytes kept opened do not open for another key');
  // written back by another replica: new bytes, read as they are now
  const other = await cache({ url: r.url });
  await other.store(key, entry(body, 'token r', 2000), 60, hasher.sealKeyFor('token r'), rk);
  t.is((await c.lookup(key, hasher.sealKeyFor('token r'), rk))?.validatedAt, 2000);
  // forged bytes under the entry's name (its body id kept, the sealed part flipped): a miss, not the entry held before
  const [entryName] = await keysOf(r, 'sh:{*}e:*');
  const client = new (await import('ioredis')).Redis(r.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await client.connect();
  cleanups.push(async () => void (await client.quit()));
  const value = await client.getBuffer(entryName as string);
  t.truthy(value);
  const forged = Buffer.from(value as Buffer);
  forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0xff;
  await client.set(entryName as string, forged, 'KEEPTTL');
  t.is(await c.lookup(key, hasher.sealKeyFor('token r'), rk), undefined);
  t.true(bus.named('cache.corrupt').length >= 1);
});
