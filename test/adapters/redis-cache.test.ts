/**
 * Entry codec and the Redis adapter against real redis-server processes (test/support/redis-harness.ts).
 */
import test from 'ava';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isMirrorError } from '../../src/domain/errors.js';
import type { CachedEntry } from '../../src/domain/model.js';
import {
  CODEC_VERSION,
  CorruptEntryError,
  chooseBodyEncoding,
  decodeEntry,
  encodeEntry,
  tryDecodeEntry,
} from '../../src/adapters/cache/entry-codec.js';
import { RedisCache, type RedisCacheOptions } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { parseRedisUrl, redactRedisUrl } from '../../src/adapters/cache/redis/redis-url.js';
import { loggingBus, makeEntry, RecordingBus, RecordingLogger } from '../support/cache-traffic.js';
import { freePort, startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';

/** The timeout under test (a hung server); the other tests keep a generous one: the codec property tests
 *  in this file hold the event loop long enough on a loaded machine to time out a 200 ms command. */
const COMMAND_TIMEOUT_MS = 200;
const ROOMY_TIMEOUT_MS = 2000;
const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function server(options: Parameters<typeof startRedis>[0] = {}): Promise<RedisProcess> {
  const r = await startRedis(options);
  cleanups.push(() => r.stop());
  return r;
}

async function cache(options: Partial<RedisCacheOptions> & { url?: string }): Promise<RedisCache> {
  const c = new RedisCache({ keyPrefix: 'test:', commandTimeoutMs: ROOMY_TIMEOUT_MS, maxReconnectDelayMs: 200, ...options });
  cleanups.push(() => c.close());
  await c.start();
  return c;
}

/** Settles first, or loses against a guard much longer than the timeout under test. */
async function beforeGuard<T>(promise: Promise<T>, guardMs: number): Promise<'settled' | 'guard'> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<'guard'>((resolve) => {
    timer = setTimeout(() => resolve('guard'), guardMs);
  });
  const settled = promise.then(
    () => 'settled' as const,
    () => 'settled' as const,
  );
  const winner = await Promise.race([settled, guard]);
  clearTimeout(timer);
  return winner;
}

const body = (e: CachedEntry | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());

// ---------------------------------------------------------------------------------------------
// codec

const fullEntry: CachedEntry = {
  status: 200,
  headers: {
    'content-type': 'application/json; charset=utf-8',
    etag: 'W/"0123456789abcdef"',
    link: '<https://api.github.com/repositories/1/issues?page=2>; rel="next"',
    'x-oauth-scopes': 'repo, user',
    'x-unicode': 'héllo ✓ 日本',
    'x-empty': '',
    ['__proto__']: 'not a prototype',
  },
  body: Buffer.from(JSON.stringify({ hello: 'world', n: Array.from({ length: 200 }, (_, i) => i) })),
  etag: 'W/"0123456789abcdef"',
  lastModified: 'Tue, 19 Sep 2017 15:57:54 GMT',
  storedAt: 1_700_000_000_123,
  validatedAt: 1_700_000_100_456,
  arrayLength: 30,
  maxAgeSeconds: 60,
};

test('codec: a full entry round-trips, headers included', (t) => {
  const decoded = decodeEntry(encodeEntry(fullEntry));
  t.deepEqual({ ...decoded, body: Buffer.from(decoded.body) }, { ...fullEntry, body: Buffer.from(fullEntry.body) });
  t.is(Object.getPrototypeOf(decoded.headers), Object.prototype, 'a "__proto__" header stays a header');
  t.is(decoded.headers['__proto__'], 'not a prototype');
});

test('codec: optional fields stay absent, empty body and binary body survive', (t) => {
  const minimal: CachedEntry = { status: 304, headers: {}, body: new Uint8Array(0), storedAt: 1, validatedAt: 2 };
  const back = decodeEntry(encodeEntry(minimal));
  t.deepEqual(Object.keys(back).sort(), ['body', 'headers', 'status', 'storedAt', 'validatedAt']);
  t.is(back.body.byteLength, 0);

  const binary = new Uint8Array(4096);
  for (let i = 0; i < binary.length; i += 1) binary[i] = (i * 37 + 11) % 256;
  const withNul = makeEntry(binary, { headers: { 'content-type': 'application/octet-stream' } });
  t.deepEqual(Buffer.from(decodeEntry(encodeEntry(withNul)).body), Buffer.from(binary));
});

test('codec: any entry round-trips (property)', (t) => {
  const arbEntry = fc.record(
    {
      status: fc.integer({ min: 100, max: 599 }),
      headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 200 }), { maxKeys: 12 }),
      body: fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.string({ maxLength: 3000 }).map((s) => new TextEncoder().encode(s.repeat(3)))),
      etag: fc.string({ maxLength: 80 }),
      lastModified: fc.string({ maxLength: 40 }),
      storedAt: fc.integer({ min: 0, max: 2 ** 45 }),
      validatedAt: fc.double({ noNaN: true }),
      arrayLength: fc.nat(),
      maxAgeSeconds: fc.double({ noNaN: true }),
    },
    { requiredKeys: ['status', 'headers', 'body', 'storedAt', 'validatedAt'] },
  );
  fc.assert(
    fc.property(arbEntry, (entry) => {
      const back = decodeEntry(encodeEntry(entry));
      const norm = (e: CachedEntry): unknown => ({ ...e, headers: { ...e.headers }, body: Buffer.from(e.body).toString('hex') });
      t.deepEqual(norm(back), norm(entry));
    }),
    { numRuns: 300 },
  );
});

test('codec: compresses only when it pays', (t) => {
  const small = Buffer.from('{"a":1}');
  t.is(chooseBodyEncoding(small).compression, 'none', 'below the threshold: raw');
  const json = Buffer.from(JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ id: i, url: `https://api.github.com/repos/o/r/issues/${i}` }))));
  const packed = chooseBodyEncoding(json);
  t.is(packed.compression, 'brotli');
  t.true(packed.bytes.byteLength < json.byteLength / 4);
  const random = Buffer.from(Array.from({ length: 8192 }, () => Math.floor(Math.random() * 256)));
  t.is(chooseBodyEncoding(random).compression, 'none', 'incompressible bodies (archives, images) stay raw');
  t.deepEqual(Buffer.from(decodeEntry(encodeEntry(makeEntry(random))).body), random);
  // deflate-raw is decodable too (the algorithm is in the flags, so it can change without a version bump)
  const deflated = encodeEntry(makeEntry(json), { compression: 'deflate-raw' });
  t.deepEqual(Buffer.from(decodeEntry(deflated).body), json);
});

test('codec: @octokit/fixtures bodies shrink and round-trip (the measurement behind docs/redis.md)', (t) => {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@octokit/fixtures/package.json')), 'scenarios', 'api.github.com');
  let raw = 0;
  let encoded = 0;
  let bodies = 0;
  for (const scenario of readdirSync(dir)) {
    const records = JSON.parse(readFileSync(path.join(dir, scenario, 'raw-fixture.json'), 'utf8')) as Array<{
      method: string;
      status: number;
      response: unknown;
      responseIsBinary?: boolean;
    }>;
    for (const r of records) {
      if (r.method !== 'get' || r.status !== 200) continue;
      const body =
        typeof r.response === 'string' ? Buffer.from(r.response, r.responseIsBinary === true ? 'hex' : 'utf8') : Buffer.from(JSON.stringify(r.response));
      const bytes = encodeEntry(makeEntry(body));
      t.deepEqual(Buffer.from(decodeEntry(bytes).body), body);
      raw += body.length;
      encoded += bytes.length;
      bodies += 1;
    }
  }
  t.log(`${bodies} bodies, ${raw} bytes raw, ${encoded} bytes encoded (headers included): ratio ${(encoded / raw).toFixed(3)}`);
  t.true(bodies > 20);
  t.true(encoded < raw * 0.4);
});

test('codec: garbage, truncation and foreign values are CorruptEntryError, never another error', (t) => {
  const good = encodeEntry(fullEntry);
  const reasons = new Set<string>();
  const check = (bytes: Uint8Array): void => {
    try {
      decodeEntry(bytes);
    } catch (err) {
      t.true(err instanceof CorruptEntryError, `unexpected ${String(err)}`);
      reasons.add((err as CorruptEntryError).reason);
    }
  };
  for (let n = 0; n < good.length; n += 1) t.throws(() => decodeEntry(good.subarray(0, n)), { instanceOf: CorruptEntryError });
  for (let i = 0; i < good.length; i += 1) {
    const flipped = Buffer.from(good);
    flipped[i] = flipped[i]! ^ 0xff;
    check(flipped);
  }
  const pickle = Buffer.from('80049505000000000000008c0568656c6c6f942e', 'hex');
  t.is(tryDecodeEntry(pickle).ok ? 'ok' : (tryDecodeEntry(pickle) as { error: CorruptEntryError }).error.reason, 'foreign');
  const newer = Buffer.from(good);
  newer[2] = CODEC_VERSION + 1;
  t.like(tryDecodeEntry(newer), { ok: false, error: { reason: 'version' } });
  const trailing = Buffer.concat([encodeEntry(makeEntry('tiny')), Buffer.from('x')]);
  t.like(tryDecodeEntry(trailing), { ok: false, error: { reason: 'length' } });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      check(bytes);
      check(Buffer.concat([good.subarray(0, 4), bytes]));
    }),
  );
  t.true(reasons.size >= 3, [...reasons].join(','));
});

// ---------------------------------------------------------------------------------------------
// URLs

test('client: URLs are parsed and redacted, never echoed in errors', (t) => {
  t.like(parseRedisUrl('rediss://mirror:s3cr%40t@cache.example:6380/2'), {
    host: 'cache.example',
    port: 6380,
    tls: true,
    username: 'mirror',
    password: 's3cr@t',
    db: 2,
  });
  t.is(redactRedisUrl('rediss://mirror:s3cret@cache.example:6380/2'), 'rediss://cache.example:6380/2');
  t.is(redactRedisUrl('not a url with s3cret'), 'redis://<invalid url>');
  t.throws(() => parseRedisUrl('http://u:s3cret@h'), { message: /unsupported URL scheme/ });
  t.notRegex(String(t.throws(() => parseRedisUrl('redis://u:s3cret@h/x'))?.message), /s3cret/);
});

// ---------------------------------------------------------------------------------------------
// RedisCache against a real server

test('redis: store, lookup, forget, TTL and key prefix', async (t) => {
  const r = await server();
  const bus = new RecordingBus();
  const c = await cache({ url: r.url, keyPrefix: 'ghm:v1:', events: bus });
  t.true(c.isReady());
  t.is(c.backend, 'redis');
  t.is(await c.lookup('k1'), undefined);
  await c.store('k1', fullEntry, 60);
  const back = await c.lookup('k1');
  t.deepEqual(Buffer.from(back!.body), Buffer.from(fullEntry.body));
  t.is(back!.etag, fullEntry.etag);
  t.is(await r.cli('EXISTS', 'ghm:v1:k1'), '1', 'stored under prefix + key');
  t.is(await r.cli('EXISTS', 'k1'), '0');
  const pttl = Number(await r.cli('PTTL', 'ghm:v1:k1'));
  t.true(pttl > 55_000 && pttl <= 60_000, `PTTL ${pttl}`);
  await c.forget('k1');
  t.is(await c.lookup('k1'), undefined);

  await c.store('short', fullEntry, 0.3);
  t.truthy(await c.lookup('short'));
  await waitFor('expiry', async () => (await c.lookup('short')) === undefined, 5000);
  await c.store('zero', fullEntry, 0);
  t.is(await r.cli('EXISTS', 'ghm:v1:zero'), '0', 'a ttl of 0 stores nothing');

  const stats = await c.stats();
  t.true(stats.bytes > 0);
  t.is(stats.entries, Number(await r.cli('DBSIZE')));
  // no error, no corrupt value: the one event is the connection becoming ready
  t.deepEqual(bus.events, [
    { name: 'cache.connection', backend: 'redis', role: 'primary', endpoint: redactRedisUrl(r.url), state: 'ready', topology: 'standalone' },
  ]);
});

test('redis: garbage under a key is a miss plus a cache.corrupt event', async (t) => {
  const r = await server();
  const log = new RecordingLogger();
  const bus = loggingBus(log);
  const c = await cache({ url: r.url, events: bus });
  await r.cli('SET', 'test:garbage', 'this is not an entry');
  await r.cli('SET', 'test:truncated', 'GM\x01');
  t.is(await c.lookup('garbage'), undefined);
  t.is(await c.lookup('truncated'), undefined);
  t.deepEqual(
    bus.named('cache.corrupt').map((e) => e.reason),
    ['foreign', 'truncated'],
  );
  t.true(log.lines.some((l) => l.msg.includes('unreadable cache entry')));
  await c.store('garbage', fullEntry, 60);
  t.truthy(await c.lookup('garbage'), 'the next store replaces it');
});

test('redis: entries sealed with the caller\'s key; another key, no key, a moved or an unsealed value is a miss', async (t) => {
  const r = await server();
  const bus = new RecordingBus();
  const c = await cache({ url: r.url, keyPrefix: 'seal:', events: bus });
  const alice = randomBytes(32);
  const bob = randomBytes(32);
  const secret = makeEntry('{"private":"alice only"}');
  await c.store('k', secret, 60, alice);
  const raw = Buffer.from(await r.cli('--no-raw', 'GET', 'seal:k'));
  t.false(raw.includes('alice only'), 'the body is not readable in Redis');
  t.is(body(await c.lookup('k', alice)), '{"private":"alice only"}');
  t.is(await c.lookup('k', bob), undefined, "another credential's key does not open it");
  t.is(await c.lookup('k'), undefined, 'no key: a sealed value is not read');
  await r.cli('COPY', 'seal:k', 'seal:other');
  t.is(await c.lookup('other', alice), undefined, 'a value moved under another key does not open');
  await c.store('plain', secret, 60);
  t.is(body(await c.lookup('plain')), '{"private":"alice only"}');
  t.is(await c.lookup('plain', alice), undefined, 'with a key, an unsealed (forgeable) value is refused');
  t.deepEqual(
    bus.named('cache.corrupt').map((e) => e.reason),
    ['seal', 'encrypted', 'seal', 'unsealed'],
  );
});

test('redis: lookups go to the reader endpoint, writes to the primary', async (t) => {
  const primary = await server();
  const replica = await server({ replicaOf: { host: '127.0.0.1', port: primary.port } });
  await waitFor('replica link', async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));
  const c = await cache({ url: primary.url, readerUrl: replica.url });
  await replica.cli('CONFIG', 'RESETSTAT');
  await primary.cli('CONFIG', 'RESETSTAT');
  await c.store('r1', fullEntry, 60);
  await waitFor('replicated', async () => (await replica.cli('EXISTS', 'test:r1')) === '1');
  for (let i = 0; i < 5; i += 1) t.truthy(await c.lookup('r1'));
  const gets = (info: string): number => Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0);
  t.is(gets(await replica.cli('INFO', 'commandstats')), 5);
  t.is(gets(await primary.cli('INFO', 'commandstats')), 0);
  t.regex(c.description, /reader redis:\/\/127\.0\.0\.1:\d+/);

  // the reader dies: lookups go to the primary
  replica.kill();
  await replica.exited();
  await waitFor('reader seen down', async () => (await c.lookup('r1')) !== undefined, 5000);
  t.true(gets(await primary.cli('INFO', 'commandstats')) >= 1);
});

test('redis: ACL user and password; no secret in logs or description', async (t) => {
  const r = await server({ password: 'adm1n-pw' });
  await r.cli('ACL', 'SETUSER', 'mirror', 'on', '>m1rror-pw', '~ghm:*', '+get', '+set', '+del', '+dbsize', '+info', '+ping', '+quit');
  const log = new RecordingLogger();
  const logged = loggingBus(log);
  const viaUrl = await cache({ url: `redis://mirror:m1rror-pw@127.0.0.1:${r.port}`, keyPrefix: 'ghm:', events: logged });
  await viaUrl.store('a', fullEntry, 60);
  t.truthy(await viaUrl.lookup('a'));
  const viaOptions = await cache({ url: `redis://127.0.0.1:${r.port}`, username: 'mirror', password: 'm1rror-pw', keyPrefix: 'ghm:', events: logged });
  t.truthy(await viaOptions.lookup('a'));
  const wrong = await cache({ url: `redis://mirror:wr0ng-pw@127.0.0.1:${r.port}`, keyPrefix: 'ghm:', events: logged });
  t.false(wrong.isReady());
  await t.throwsAsync(wrong.lookup('a'));
  await wrong.close();
  for (const secret of ['m1rror-pw', 'wr0ng-pw', 'adm1n-pw']) {
    t.false(log.text().includes(secret), `log lines must not contain ${secret}`);
    t.false(viaUrl.description.includes(secret));
  }
  t.true(log.lines.some((l) => l.msg.includes('not reachable at start')));
});

test.serial('redis: fail fast against a killed server and a hung one', async (t) => {
  const r = await server();
  const bus = new RecordingBus();
  const c = await cache({ url: r.url, events: bus, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  await c.store('k', fullEntry, 60);
  const changes: boolean[] = [];
  c.onReadyChange((ready) => changes.push(ready));

  r.kill('SIGKILL');
  await r.exited();
  await waitFor('connection loss seen', () => !c.isReady(), 5000);
  const dead = c.lookup('k');
  t.is(await beforeGuard(dead, 5000), 'settled', 'a lookup against a dead server settles long before the guard');
  const err = await t.throwsAsync(dead);
  t.true(isMirrorError(err, 'CACHE_UNAVAILABLE'));
  await t.throwsAsync(c.store('k', fullEntry, 60));
  t.true(bus.named('cache.error').some((e) => e.code === 'REDIS_UNAVAILABLE'));

  await r.restart();
  await waitFor('reconnected', () => c.isReady(), 10000);
  t.deepEqual(changes, [false, true]);
  await c.store('k', fullEntry, 60);

  r.pause();
  try {
    const hung = c.lookup('k');
    t.is(await beforeGuard(hung, COMMAND_TIMEOUT_MS * 20), 'settled', 'a hung server: the command timeout rejects');
    await t.throwsAsync(hung);
    t.true(bus.named('cache.error').some((e) => e.code === 'REDIS_TIMEOUT'));
  } finally {
    r.resume();
  }
  await waitFor('answers again', async () => (await c.lookup('k').catch(() => undefined)) !== undefined, 5000);
});

test('redis: start() also returns when no sentinel answers', async (t) => {
  const log = new RecordingLogger();
  const sentinels = [{ host: '127.0.0.1', port: await freePort() }, { host: '127.0.0.1', port: await freePort() }];
  const c = new RedisCache({ sentinels, sentinelName: 'nobody', keyPrefix: 'x:', commandTimeoutMs: 100, startTimeoutMs: 300, events: loggingBus(log) });
  cleanups.push(() => c.close());
  t.is(await beforeGuard(c.start(), 5000), 'settled');
  t.false(c.isReady());
  await t.throwsAsync(c.lookup('k'), { message: /REDIS_UNAVAILABLE/ });
  t.true(log.lines.some((l) => l.msg.includes('not reachable at start')));
});

test.serial('redis: a connection ioredis ends for good is started again', async (t) => {
  const r = await server();
  const log = new RecordingLogger();
  const c = await cache({ url: r.url, events: loggingBus(log) });
  t.true(c.isReady());
  // what ioredis does in the Sentinel failover race: the connection ends instead of reconnecting
  (c as unknown as { writer: { disconnect(): void } }).writer.disconnect();
  await waitFor('ended', () => !c.isReady(), 2000, 5);
  await waitFor('revived', () => c.isReady(), 5000, 10);
  t.true(log.lines.some((l) => l.msg.includes('connecting again')));
  await c.store('x', fullEntry, 60);
  t.truthy(await c.lookup('x'));
});

test.serial('redis: start() resolves while Redis is down, then connects when it appears', async (t) => {
  const r = await server();
  r.kill('SIGKILL');
  await r.exited();
  const log = new RecordingLogger();
  const c = await cache({ url: r.url, events: loggingBus(log) });
  t.false(c.isReady());
  await t.throwsAsync(c.lookup('x'), { message: /REDIS_UNAVAILABLE/ });
  const ready = new Promise<boolean>((resolve) => c.onReadyChange(resolve));
  await r.restart();
  t.true(await ready);
  t.true(c.isReady());
  await c.store('x', fullEntry, 60);
  t.truthy(await c.lookup('x'));
  await c.close();
  t.false(c.isReady());
});
