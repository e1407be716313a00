/**
 * BreakerCache: a primary cache (Redis) and the memory cache behind one opossum breaker.
 * The first tests use a controllable fake primary; the rest kill, hang and slow down a real Redis.
 */
import test from 'ava';
import { BreakerCache, type BreakerCacheOptions, type ReadinessSource } from '../../src/adapters/cache/breaker/breaker-cache.adapter.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import type { CachedEntry, StoredRepresentation } from '../../src/domain/model.js';
import type { CachePort } from '../../src/domain/ports/cache.port.js';
import { during, loggingBus, makeEntry, RecordingBus, RecordingLogger } from '../support/cache-traffic.js';
import { sleep, startRedis, waitFor, type RedisProcess } from '../support/redis-harness.js';

const BREAKER: BreakerCacheOptions = { timeoutMs: 250, errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 400 };
const COMMAND_TIMEOUT_MS = 200;

const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

/** A primary whose behaviour the test switches: ok, failing, hanging. Counts calls. */
class FakePrimary implements CachePort, ReadinessSource {
  readonly backend = 'redis';
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  calls = 0;
  sealKeys: Array<Uint8Array | undefined> = [];
  ready = true;
  readonly data = new Map<string, CachedEntry>();
  private listeners = new Set<(ready: boolean) => void>();

  private async gate(): Promise<void> {
    this.calls += 1;
    if (this.mode === 'fail') throw new Error('ECONNREFUSED');
    if (this.mode === 'hang') await new Promise(() => undefined);
  }
  async lookup(key: string, sealKey?: Uint8Array): Promise<CachedEntry | undefined> {
    this.sealKeys.push(sealKey);
    await this.gate();
    return this.data.get(key);
  }
  async store(key: string, entry: CachedEntry, _ttl: number, sealKey?: Uint8Array): Promise<void> {
    this.sealKeys.push(sealKey);
    await this.gate();
    this.data.set(key, entry);
  }  async representations(): Promise<readonly StoredRepresentation[]> {
    await this.gate();
    return [];
  }

  async forget(key: string): Promise<void> {
    await this.gate();
    this.data.delete(key);
  }
  isReady(): boolean {
    return this.ready;
  }
  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  setReady(ready: boolean): void {
    this.ready = ready;
    for (const l of this.listeners) l(ready);
  }
}

function makeSut(options: Partial<BreakerCacheOptions> = {}, primary = new FakePrimary()) {
  const memory = new MemoryCache({ maxBytes: 10 * 1024 * 1024 });
  const logger = new RecordingLogger();
  const bus = loggingBus(logger);
  const cache = new BreakerCache(primary, memory, { ...BREAKER, events: bus, ...options });
  cleanups.push(() => cache.close());
  return { cache, primary, memory, bus, logger };
}

const body = (e: CachedEntry | undefined): string | undefined => (e === undefined ? undefined : Buffer.from(e.body).toString());

// ---------------------------------------------------------------------------------------------
// with a fake primary

test('a primary call cut short by the timeout is served by memory and reported as a cache error', async (t) => {
  const { cache, primary, memory, bus } = makeSut({ timeoutMs: 30, volumeThreshold: 100 });
  await memory.store('k', makeEntry('k|memory'), 60);
  primary.mode = 'hang';
  t.is(body(await cache.lookup('k')), 'k|memory');
  await cache.store('other', makeEntry('other|1'), 60);
  const errors = bus.named('cache.error') as Array<{ backend: string; operation: string; code: string; message: string }>;
  t.deepEqual(
    errors.map((e) => [e.backend, e.operation, e.code]),
    [
      ['redis', 'lookup', 'BREAKER_TIMEOUT'],
      ['redis', 'store', 'BREAKER_TIMEOUT'],
    ],
  );
  t.regex(errors[0]!.message, /within 30 ms; served by the memory cache/);
  t.is(cache.breakerState, 'closed', 'two slow calls under the volume threshold do not open it');
});

test('each failed call is served by memory; the breaker opens, probes once half-open, closes', async (t) => {
  const { cache, primary, memory, bus, logger } = makeSut();
  t.is(cache.backend, 'redis');
  await cache.store('a', makeEntry('A'), 60);
  t.is(body(primary.data.get('a')), 'A');
  t.is(memory.size, 0, 'a healthy primary: memory is not written');

  primary.mode = 'fail';
  for (let i = 0; i < 6; i += 1) {
    await cache.store(`k${i}`, makeEntry(`v${i}`), 60); // never rejects
  }
  t.is(cache.breakerState, 'open');
  t.is(cache.backend, 'memory');
  const callsWhenOpen = primary.calls;
  t.is(body(await cache.lookup('k3')), 'v3', 'served from memory');
  t.is(primary.calls, callsWhenOpen, 'open: the primary is not called');

  await waitFor('half-open', () => cache.breakerState === 'half_open', 3000, 10);
  primary.mode = 'hang';
  const calls = await Promise.all([cache.lookup('k1'), cache.lookup('k2'), cache.lookup('k4'), cache.lookup('k5')]);
  t.deepEqual(calls.map(body), ['v1', 'v2', 'v4', 'v5'], 'the probe times out into memory, the others go to memory at once');
  t.is(primary.calls, callsWhenOpen + 1, 'half-open lets exactly one probe through');
  t.is(cache.breakerState, 'open');

  primary.mode = 'ok';
  await waitFor('half-open again', () => cache.breakerState === 'half_open', 3000, 10);
  await cache.lookup('a');
  t.is(cache.breakerState, 'closed');
  t.is(cache.backend, 'redis');
  const states = bus.named('breaker.changed').map((e) => `${e.breaker}:${e.state}`);
  t.deepEqual(states, ['cache:open', 'cache:half_open', 'cache:open', 'cache:half_open', 'cache:closed']);
  t.deepEqual(
    bus.named('cache.backend_changed').map((e) => e.backend),
    ['memory', 'redis'],
  );
  t.true(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('breaker open')));
  t.true(logger.lines.some((l) => l.msg.includes('breaker closed')));
});

test('outage entries stay in memory as a fallback tier and are not copied back', async (t) => {
  const { cache, primary, memory } = makeSut();
  primary.data.set('both', makeEntry('old-in-redis'));
  primary.mode = 'fail';
  for (let i = 0; i < 6; i += 1) await cache.lookup('warm-up');
  t.is(cache.breakerState, 'open');
  await cache.store('outage', makeEntry('built during the outage'), 60);
  await cache.store('both', makeEntry('new-in-memory'), 60);
  t.is(memory.size, 2);

  primary.mode = 'ok';
  primary.setReady(true); // the client reconnected
  t.is(cache.breakerState, 'closed', 'a ready primary closes the breaker at once');
  t.is(primary.data.has('outage'), false, 'nothing copied back');
  t.is(body(await cache.lookup('outage')), 'built during the outage', 'a primary miss falls through to memory');
  t.is(body(await cache.lookup('both')), 'old-in-redis', 'the primary answers first');
  await cache.store('outage', makeEntry('revalidated'), 60);
  t.is(body(primary.data.get('outage')), 'revalidated');
  t.is(memory.get('outage'), undefined, 'a store to the primary drops the memory copy');
  await cache.forget('both');
  t.is(memory.get('both'), undefined);
  t.false(primary.data.has('both'));
});

test('a primary that is not ready at construction starts on memory and switches when ready', async (t) => {
  const primary = new FakePrimary();
  primary.ready = false;
  const { cache, bus } = makeSut({}, primary);
  t.is(cache.backend, 'memory');
  t.is(cache.breakerState, 'open');
  await cache.store('x', makeEntry('X'), 60);
  t.is(primary.calls, 0);
  primary.setReady(true);
  t.is(cache.backend, 'redis');
  await cache.store('y', makeEntry('Y'), 60);
  t.is(body(primary.data.get('y')), 'Y');
  primary.setReady(false);
  t.is(cache.backend, 'memory', 'losing the connection opens the breaker without waiting for failures');
  t.deepEqual(
    bus.named('cache.backend_changed').map((e) => e.backend),
    ['memory', 'redis', 'memory'],
  );
});

test('seal keys reach the primary and the fallback', async (t) => {
  const { cache, primary, memory } = makeSut();
  const sealKey = new Uint8Array(32).fill(7);
  await cache.store('s', makeEntry('S'), 60, sealKey);
  await cache.lookup('s', sealKey);
  t.deepEqual(primary.sealKeys, [sealKey, sealKey]);
  primary.mode = 'fail';
  await cache.store('t', makeEntry('T'), 60, sealKey);
  t.is(memory.peek('t')?.sealKey, sealKey, 'a fallback store keeps the key (snapshots seal with it)');
});

test('close() shuts the breaker down and unsubscribes', async (t) => {
  const primary = new FakePrimary();
  const { cache } = makeSut({}, primary);
  await cache.close();
  primary.setReady(false);
  t.is(cache.backend, 'redis', 'no longer follows the primary');
  await t.throwsAsync(cache.lookup('x'), { message: /shutdown/ });
});

// ---------------------------------------------------------------------------------------------
// with a real Redis

async function realSut(): Promise<{ redis: RedisProcess; primary: RedisCache; memory: MemoryCache; cache: BreakerCache; bus: RecordingBus }> {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const logger = new RecordingLogger();
  const bus = loggingBus(logger);
  const primary = new RedisCache({ url: redis.url, keyPrefix: 'brk:', commandTimeoutMs: COMMAND_TIMEOUT_MS, maxReconnectDelayMs: 200, events: bus });
  cleanups.push(() => primary.close());
  await primary.start();
  const memory = new MemoryCache({ maxBytes: 50 * 1024 * 1024 });
  const cache = new BreakerCache(primary, memory, { ...BREAKER, events: bus });
  cleanups.push(() => cache.close());
  return { redis, primary, memory, cache, bus };
}

test.serial('Redis SIGKILLed under 20 concurrent clients: zero failed operations, open, restart, closed', async (t) => {
  const { redis, primary, cache, bus } = await realSut();
  t.is(cache.backend, 'redis');
  let keysBeforeRecovery = 0;
  const report = await during(cache, { loops: 20, keyPrefix: 'kill' }, async () => {
    await sleep(300);
    redis.kill('SIGKILL');
    await waitFor('breaker open', () => cache.breakerState === 'open', 5000, 10);
    t.is(cache.backend, 'memory');
    await sleep(500);
    await redis.restart();
    await waitFor('breaker closed', () => cache.breakerState === 'closed', 10000, 10);
    t.is(cache.backend, 'redis');
    keysBeforeRecovery = Number(await redis.cli('DBSIZE'));
    await sleep(300);
  });
  t.log(`${report.operations} operations, ${report.hits} hits, slowest ${report.maxLatencyMs.toFixed(0)} ms`);
  t.is(report.failed, 0, report.errors.join('; '));
  t.is(report.wrongBodies, 0);
  t.true(report.operations > 200);
  t.true(report.hits > 50);
  t.true(Number(await redis.cli('DBSIZE')) > keysBeforeRecovery, 'after recovery the entries go to Redis again');
  await cache.store('after', makeEntry('after'), 60);
  t.is(await redis.cli('EXISTS', 'brk:after'), '1');
  t.true(primary.isReady());
  const states = bus.named('breaker.changed').map((e) => e.state);
  t.is(states[0], 'open');
  t.is(states.at(-1), 'closed');
});

test.serial('Redis hung (SIGSTOP) and slow (DEBUG SLEEP): calls fall back within the breaker timeout', async (t) => {
  const { redis, cache, bus } = await realSut();
  await cache.store('hot', makeEntry('hot|1'), 60);
  // an opening is seen in the events, not by sampling the state: on a loaded machine a sample can
  // miss an open → closed that happens between two polls
  const opens = (): number => bus.named('breaker.changed').filter((e) => e.state === 'open').length;
  const recovered = (what: string): Promise<void> =>
    waitFor(what, async () => {
      await cache.lookup('hot');
      return cache.breakerState === 'closed';
    }, 10000, 50);

  // hung: the server keeps its sockets and answers nothing
  const hung = await during(cache, { loops: 10, keyPrefix: 'hung' }, async () => {
    const before = opens();
    redis.pause();
    try {
      await waitFor('breaker open (hung)', () => opens() > before, 15_000, 10);
      await sleep(600);
    } finally {
      redis.resume();
    }
  });
  t.is(hung.failed, 0, hung.errors.join('; '));
  t.log(`hung: ${hung.operations} operations, slowest ${hung.maxLatencyMs.toFixed(0)} ms (breaker timeout ${BREAKER.timeoutMs} ms)`);
  // no call waited much longer than the breaker timeout (the upstream timeout is 10 s)
  t.true(hung.maxLatencyMs < BREAKER.timeoutMs * 4);
  await recovered('breaker closed after SIGCONT');

  // slow: the server blocks for 1.5 s on another client's command. Whether the breaker opens depends
  // on how many calls succeeded in its window before (a percentage): what must hold either way is that
  // every call waiting on the sleeping server fell back within the timeout, and was counted as failed
  const cacheErrors = (): number => bus.named('cache.error').length;
  let failedOver = 0;
  const slow = await during(cache, { loops: 10, keyPrefix: 'slow' }, async () => {
    const before = cacheErrors();
    await redis.cli('DEBUG', 'SLEEP', '1.5'); // answers once the server has slept
    failedOver = cacheErrors() - before;
  });
  t.true(failedOver > 0, 'calls made while Redis slept failed over to memory and were counted');
  t.is(slow.failed, 0, slow.errors.join('; '));
  t.log(`slow: ${slow.operations} operations, slowest ${slow.maxLatencyMs.toFixed(0)} ms`);
  t.true(slow.maxLatencyMs < BREAKER.timeoutMs * 4);
  await recovered('breaker closed after the sleep');
});

test.serial('starting while Redis is unreachable: memory first, Redis once it appears', async (t) => {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  redis.kill('SIGKILL');
  await redis.exited();
  const primary = new RedisCache({ url: redis.url, keyPrefix: 'late:', commandTimeoutMs: COMMAND_TIMEOUT_MS, maxReconnectDelayMs: 200 });
  cleanups.push(() => primary.close());
  await primary.start();
  const memory = new MemoryCache({ maxBytes: 1024 * 1024 });
  const bus = new RecordingBus();
  const cache = new BreakerCache(primary, memory, { ...BREAKER, events: bus });
  cleanups.push(() => cache.close());
  t.is(cache.backend, 'memory');
  await cache.store('early', makeEntry('early'), 60);
  t.is(body(await cache.lookup('early')), 'early');
  await redis.restart();
  await waitFor('switched to redis', () => cache.backend === 'redis', 10000, 10);
  await cache.store('late', makeEntry('late'), 60);
  t.is(await redis.cli('EXISTS', 'late:late'), '1');
  t.is(body(await cache.lookup('early')), 'early', 'the outage entry is still served from memory');
  t.deepEqual(
    bus.named('cache.backend_changed').map((e) => e.backend),
    ['memory', 'redis'],
  );
});
