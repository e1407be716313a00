/**
 * Leases of reads across a Sentinel failover (a real Sentinel set: master, replica, 3 sentinels):
 * when the master dies every replica's hold subscriber is lost and its leases are dropped; once the
 * replica is promoted the subscribers connect to it through the sentinels and subscribe again, leases
 * are granted again, and a hold one replica publishes on the new master ends the other's lease.
 */
import test from 'ava';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisGovernor } from '../../src/adapters/governor/redis-governor.adapter.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';
import { governedCall, type Admission } from '../../src/domain/ports/governor.port.js';
import { startSentinelSet, waitFor, type SentinelSet } from '../support/redis-harness.js';

const hasher = new HmacKeyHasher('test-secret');
const LIMITS = { enabled: true, maxConcurrent: 50, pointsPerMinute: 800, writeSpacingMs: 0, maxWaitMs: 0, leaseMs: 60_000 };
const KEY_PREFIX = 'gov-sen:';

const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  // governors, then caches (they quit their connections), then the servers
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function replica(set: SentinelSet): Promise<RedisGovernor> {
  const cache = new RedisCache({ sentinels: set.sentinelAddrs, sentinelName: set.name, keyPrefix: KEY_PREFIX, commandTimeoutMs: 300, maxReconnectDelayMs: 200 });
  cleanups.push(() => cache.close());
  await cache.start();
  const governor = new RedisGovernor({ ...LIMITS, clock: systemClock, client: cache.client, keyPrefix: KEY_PREFIX, pollMs: 5 });
  cleanups.push(() => governor.close());
  return governor;
}

/** A read as GovernedUpstream takes it: admitNow (a lease answers without Redis), else acquire. */
async function turn(governor: RedisGovernor, partition: string): Promise<Admission> {
  const call = governedCall(partition, 'GET');
  const admission = governor.admitNow(call) ?? (await governor.acquire(call));
  if (admission.kind === 'admitted') admission.permit.release(true);
  return admission;
}

/** The governors' hold subscribers on this server (CLIENT LIST TYPE pubsub, by connection name). */
async function holdSubscribers(server: SentinelSet['master']): Promise<number> {
  const list = await server.cli('CLIENT', 'LIST', 'TYPE', 'pubsub');
  return list.split('\n').filter((line) => line.includes('name=mirror-governor-holds')).length;
}

/** Two reads of a busy credential: the second's script grants a lease. Resolves once it is held. */
async function lease(governor: RedisGovernor, partition: string): Promise<void> {
  await waitFor('a lease granted', async () => {
    await turn(governor, partition);
    return governor.store.leaseCount === 1;
  }, 20_000, 20);
}

test('sentinel failover: leases dropped with the master, granted again on the promoted replica, holds published there reach every replica', async (t) => {
  const set = await startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 3000 });
  cleanups.push(() => set.stop());
  const a = await replica(set);
  const b = await replica(set);
  const warmUp = hasher.partitionOf('token sentinel-warm-up');
  await turn(a, warmUp);
  await turn(b, warmUp);
  await waitFor('both subscribed on the master', async () => a.store.leasing && b.store.leasing && (await holdSubscribers(set.master)) === 2, 10_000, 10);

  const before = hasher.partitionOf('token sentinel-before');
  await lease(b, before);

  set.master.kill('SIGKILL');
  await waitFor('subscriptions lost with the master', () => !a.store.leasing && !b.store.leasing, 10_000, 5);
  t.is(b.store.leaseCount, 0, 'the lease went with the subscription');
  // meanwhile reads are admitted by the memory counters, never from a lease
  const leasedDuringOutage = b.store.leasedAdmissions;
  t.is((await turn(b, before)).kind, 'admitted');
  t.is(b.store.leasedAdmissions, leasedDuringOutage);

  await waitFor('sentinel failover', async () => (await set.currentMasterPort()) === set.replica.port, 20_000, 100);
  await waitFor('both subscribed again, on the promoted replica', async () => a.store.leasing && b.store.leasing && (await holdSubscribers(set.replica)) === 2, 20_000, 20);

  const after = hasher.partitionOf('token sentinel-after');
  await lease(b, after);
  const leasedBefore = b.store.leasedAdmissions;
  t.is((await turn(b, after)).kind, 'admitted');
  t.is(b.store.leasedAdmissions, leasedBefore + 1, 'B admits from its lease on the new master');

  // A must be back on Redis (not its memory counters) for its hold to be published
  const probe = hasher.partitionOf('token sentinel-a');
  await waitFor('A on the new master', async () => (await turn(a, probe)).kind === 'admitted' && (await set.replica.cli('EXISTS', a.store.keysOf(probe).points)) === '1', 20_000, 50);
  await a.hold(after, 30_000);
  await waitFor('the hold message delivered to B through the new master', () => b.memory.heldForMs(after) > 0, 5_000, 1);
  t.is(b.store.leaseCount, 0, 'B dropped its lease');
  const held = await b.acquire(governedCall(after, 'GET'));
  t.is(held.kind, 'held');
  t.true(Number(await set.replica.cli('PTTL', b.store.keysOf(after).hold)) > 20_000, 'the hold is in the new master');
});
