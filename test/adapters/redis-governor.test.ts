/**
 * The Redis governor on a real Redis, two "replicas" (two connections, two governors) on one server:
 * concurrency, points, spacing and holds are fleet-wide; keys are hashed, hash-tagged and expire; a
 * slot of a replica that died lapses; a Redis that is down or unusable means in-memory counting,
 * never a blocked call.
 */
import test from 'ava';
import calculateSlot from 'cluster-key-slot';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisGovernor, type RedisGovernorOptions } from '../../src/adapters/governor/redis-governor.adapter.js';
import { GovernorFleets } from '../support/governor-fleet.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';
import { governedCall, type Admission } from '../../src/domain/ports/governor.port.js';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { startCluster, waitFor, type RedisProcess } from '../support/redis-harness.js';

const hasher = new HmacKeyHasher('test-secret');
const LIMITS = { enabled: true, maxConcurrent: 50, pointsPerMinute: 800, writeSpacingMs: 0, maxWaitMs: 0 };
const fleets = new GovernorFleets({ prefix: 'gov', limits: LIMITS, commandTimeoutMs: 200, pollMs: 10 });
const caches = fleets.caches;
let redis: RedisProcess;

test.before(async () => {
  await fleets.start();
  redis = fleets.redis;
});

test.after.always(() => fleets.close());

/** Two replicas' governors on one Redis, under a key prefix of their own. */
const fleet = (limits: Partial<typeof LIMITS> & Partial<RedisGovernorOptions> = {}, replicas = 2) => fleets.fleet(limits, replicas);

const partition = hasher.partitionOf('token fleet-secret-token');
const kinds = (admissions: Admission[]) => admissions.map((a) => a.kind).sort();

test.serial('concurrency is fleet-wide: maxConcurrent slots across both replicas, freed by release', async (t) => {
  const { governors: [a, b] } = await fleet({ maxConcurrent: 3 });
  if (!a || !b) throw new Error('two replicas');
  const admissions = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).acquire(governedCall(partition, 'GET'))));
  t.deepEqual(kinds(admissions), [...Array(3).fill('admitted'), ...Array(5).fill('refused')]);
  for (const admission of admissions) if (admission.kind === 'admitted') admission.permit.release(true);
  await waitFor('slots freed', async () => (await b.acquire(governedCall(partition, 'GET'))).kind === 'admitted');
  t.pass();
});

test.serial('a waiting call on replica B gets the slot replica A gives back', async (t) => {
  const { governors: [a, b] } = await fleet({ maxConcurrent: 1, maxWaitMs: 10_000 });
  if (!a || !b) throw new Error('two replicas');
  const first = await a.acquire(governedCall(partition, 'GET'));
  t.is(first.kind, 'admitted');
  let answered: Admission | undefined;
  const waiting = b.acquire(governedCall(partition, 'GET')).then((admission) => (answered = admission));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(answered, undefined, 'B waits while A holds the only slot');
  if (first.kind === 'admitted') first.permit.release(true);
  t.is((await waiting).kind, 'admitted');
});

test.serial('points and write spacing are fleet-wide', async (t) => {
  const points = await fleet({ pointsPerMinute: 6 });
  const [a, b] = points.governors as [RedisGovernor, RedisGovernor];
  const reads = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).acquire(governedCall(partition, 'GET'))));
  t.deepEqual(kinds(reads), [...Array(6).fill('admitted'), ...Array(4).fill('refused')]);
  const refusal = reads.find((r) => r.kind === 'refused');
  t.true(refusal?.kind === 'refused' && refusal.retryAfterMs > 1000, 'the hint is when the window frees up, about a minute away');

  const spaced = await fleet({ writeSpacingMs: 60_000 });
  const [c, d] = spaced.governors as [RedisGovernor, RedisGovernor];
  const writes = await Promise.all([c, d, c, d].map((g) => g.acquire(governedCall(partition, 'POST'))));
  t.deepEqual(kinds(writes), ['admitted', 'refused', 'refused', 'refused']);
  t.is((await d.acquire(governedCall(partition, 'GET'))).kind, 'admitted', 'reads are not spaced');
});

test.serial('a hold set through replica A holds the credential on replica B, with the time left', async (t) => {
  const { governors: [a, b] } = await fleet();
  if (!a || !b) throw new Error('two replicas');
  await a.hold(partition, 30_000);
  const held = await b.acquire(governedCall(partition, 'GET'));
  t.is(held.kind, 'held');
  t.true(held.kind === 'held' && held.retryAfterMs > 20_000 && held.retryAfterMs <= 30_000, JSON.stringify(held));
  t.is((await b.acquire(governedCall(hasher.partitionOf('token other'), 'GET'))).kind, 'admitted');
});

test.serial('keys: hashed partition, one hash tag (one Cluster slot) per credential, every key with a TTL, no token', async (t) => {
  const { governors: [a], keyPrefix } = await fleet({ writeSpacingMs: 10 });
  if (!a) throw new Error('one replica');
  const admission = await a.acquire(governedCall(partition, 'POST'));
  await a.hold(partition, 5000);
  const keys = (await redis.cli('--scan', '--pattern', `${keyPrefix}*`)).split('\n').filter(Boolean);
  t.is(keys.length, 4, keys.join(' '));
  t.is(new Set(keys.map((k) => calculateSlot(k))).size, 1, 'one slot');
  for (const key of keys) {
    t.true(key.startsWith(`${keyPrefix}__gov:{${partition}}:`), key);
    t.false(key.includes('fleet-secret-token'), key);
    t.true(Number(await redis.cli('PTTL', key)) > 0, `${key} expires`);
  }
  t.deepEqual(Object.keys(a.store.keysOf(partition)).length, 4);
  if (admission.kind === 'admitted') admission.permit.release(true);
});

test.serial('the slots of a replica that died lapse after their lease', async (t) => {
  const { governors: [a, b] } = await fleet({ maxConcurrent: 2, slotTtlMs: 300 });
  if (!a || !b) throw new Error('two replicas');
  t.is((await a.acquire(governedCall(partition, 'GET'))).kind, 'admitted');
  t.is((await a.acquire(governedCall(partition, 'GET'))).kind, 'admitted');
  // A "dies": its permits are never released
  t.is((await b.acquire(governedCall(partition, 'GET'))).kind, 'refused');
  await waitFor('lapsed', async () => (await b.acquire(governedCall(partition, 'GET'))).kind === 'admitted', 5000, 50);
  t.pass();
});

test.serial('after a cache error on the same Redis, the governor counts in memory for a while instead of waiting on Redis', async (t) => {
  const bus = new EventEmitter2Bus(() => undefined);
  const { governors: [a], keyPrefix } = await fleet({ cacheEvents: bus });
  if (!a) throw new Error('one replica');
  bus.emit({ name: 'cache.error', backend: 'memory', operation: 'lookup', code: 'X', message: 'x' });
  t.is((await a.acquire(governedCall(partition, 'GET'))).kind, 'admitted');
  t.not((await redis.cli('--scan', '--pattern', `${keyPrefix}*`)).trim(), '', 'another backend’s error changes nothing');
  await redis.cli('FLUSHALL');
  bus.emit({ name: 'cache.error', backend: 'redis', operation: 'lookup', code: 'BREAKER_TIMEOUT', message: 'no answer' });
  t.is((await a.acquire(governedCall(partition, 'GET'))).kind, 'admitted');
  t.is((await redis.cli('--scan', '--pattern', `${keyPrefix}*`)).trim(), '', 'Redis was left alone');
  await waitFor('back on Redis', async () => {
    await a.acquire(governedCall(partition, 'GET'));
    return (await redis.cli('--scan', '--pattern', `${keyPrefix}*`)).trim() !== '';
  }, 5000, 100);
  t.pass();
});

test.serial('Redis unusable (breaker not closed) or down: counting goes on in memory, nothing blocks, nothing fails', async (t) => {
  let available = true;
  const { governors: [a], keyPrefix } = await fleet({ maxConcurrent: 2, available: () => available });
  if (!a) throw new Error('one replica');
  available = false;
  const local = await Promise.all(Array.from({ length: 3 }, () => a.acquire(governedCall(partition, 'GET'))));
  t.deepEqual(kinds(local), ['admitted', 'admitted', 'refused'], 'in-memory limits apply');
  t.is((await redis.cli('--scan', '--pattern', `${keyPrefix}*`)).trim(), '', 'Redis was not asked');
  for (const admission of local) if (admission.kind === 'admitted') admission.permit.release(true);
  await a.hold(partition, 60_000);
  available = true;
  t.is((await a.acquire(governedCall(partition, 'GET'))).kind, 'held', 'a hold taken while Redis was unusable still counts');

  const other = hasher.partitionOf('token during-outage');
  redis.kill('SIGKILL');
  await redis.exited();
  const started = performance.now();
  const during = await Promise.all(Array.from({ length: 2 }, () => a.acquire(governedCall(other, 'GET'))));
  t.deepEqual(kinds(during), ['admitted', 'admitted']);
  t.true(performance.now() - started < 5000, 'no call waits on a dead Redis');
  await a.hold(other, 1000); // never rejects
  await redis.restart();
});

/** Script calls Redis has run so far (EVALSHA and EVAL), from INFO commandstats. */
async function scriptCalls(server: RedisProcess): Promise<number> {
  const info = await server.cli('INFO', 'commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

test.serial('a release rides on the next attempt of the process: one round trip per turn, not two', async (t) => {
  const { governors: [a] } = await fleet({ maxConcurrent: 1 }, 1);
  if (!a) throw new Error('one replica');
  const credentials = Array.from({ length: 40 }, (_, i) => hasher.partitionOf(`token rider-${i}`));
  const first = await a.acquire(governedCall(credentials[0] as string, 'GET'));
  if (first.kind !== 'admitted') throw new Error('admitted');
  first.permit.release(true);
  const before = await scriptCalls(redis);
  // one call after the other, each for another credential, as a busy replica makes them
  for (const credential of credentials.slice(1)) {
    const admission = await a.acquire(governedCall(credential, 'GET'));
    t.is(admission.kind, 'admitted');
    if (admission.kind === 'admitted') admission.permit.release(true);
  }
  const spent = (await scriptCalls(redis)) - before;
  t.true(spent <= credentials.length + 2, `${spent} script calls for ${credentials.length - 1} turns`);
  // maxConcurrent 1: every turn found the slot of the one before given back
  const again = await a.acquire(governedCall(credentials[0] as string, 'GET'));
  t.is(again.kind, 'admitted');
  if (again.kind === 'admitted') again.permit.release(true);
});

test.serial('a release that no attempt picks up reaches Redis on its own, within a few ms', async (t) => {
  const { governors: [a, b] } = await fleet({ maxConcurrent: 1 });
  if (!a || !b) throw new Error('two replicas');
  const held = await a.acquire(governedCall(partition, 'GET'));
  if (held.kind !== 'admitted') throw new Error('admitted');
  t.is((await b.acquire(governedCall(partition, 'GET'))).kind, 'refused', 'the one slot is taken');
  held.permit.release(true);
  const slots = a.store.keysOf(partition).slots;
  await waitFor('the slot given back in Redis', async () => Number(await redis.cli('ZCARD', slots)) === 0, 2000, 2);
  t.is((await b.acquire(governedCall(partition, 'GET'))).kind, 'admitted', 'the other replica gets it');
});

test.serial('in a Redis Cluster a release goes at once, on its own (a script touches one slot), no leases: turns and slots as on one server', async (t) => {
  const cluster = await startCluster({ nodeTimeoutMs: 2000 });
  t.teardown(() => cluster.stop());
  const keyPrefix = fleets.newPrefix('govc');
  const cache = new RedisCache({ clusterNodes: cluster.startupNodes.slice(0, 2), keyPrefix, commandTimeoutMs: 500 });
  caches.push(cache);
  await cache.start();
  // leases asked for, but off in a Cluster (docs/resilience.md): every turn below is Redis'
  const governor = fleets.track(new RedisGovernor({ ...LIMITS, maxConcurrent: 1, clock: systemClock, client: cache.client, keyPrefix, pollMs: 10, leaseMs: 250 }));
  const credentials = Array.from({ length: 12 }, (_, i) => hasher.partitionOf(`token cluster-${i}`));
  for (let round = 0; round < 2; round++) {
    for (const credential of credentials) {
      const admission = await governor.acquire(governedCall(credential, 'GET'));
      t.is(admission.kind, 'admitted', `round ${round}`);
      if (admission.kind === 'admitted') admission.permit.release(true);
    }
  }
  // the turns were Redis' (not the in-memory fallback's): a slot taken shows in the Cluster, and goes
  const slots = governor.store.keysOf(credentials[0] as string).slots;
  const taken = await governor.acquire(governedCall(credentials[0] as string, 'GET'));
  t.is(await cache.client.zcard(slots), 1);
  if (taken.kind === 'admitted') taken.permit.release(true);
  await waitFor('the slot given back on its master', async () => (await cache.client.zcard(slots)) === 0, 2000, 2);
  // each credential's slot was given back on its own master: the one slot is free again everywhere
  const again = await Promise.all(credentials.map((credential) => governor.acquire(governedCall(credential, 'GET'))));
  t.deepEqual([...new Set(again.map((a) => a.kind))], ['admitted']);
  for (const admission of again) if (admission.kind === 'admitted') admission.permit.release(true);
  t.false(governor.store.leasing);
  t.is(governor.store.leasedAdmissions, 0, 'no lease in a Cluster');
});
