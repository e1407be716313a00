/**
 * Leases of reads (upstream.governor.leaseMs) on a real Redis, two "replicas" (two connections, two
 * governors) on one server: a busy credential's reads are admitted from a block without a round trip;
 * the fleet-wide concurrency and points bounds still hold exactly; a hold published by one replica
 * ends the other's lease; no lease without a live subscription; unspent points go back.
 */
import test from 'ava';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisGovernor, type RedisGovernorOptions } from '../../src/adapters/governor/redis-governor.adapter.js';
import { GovernorFleets } from '../support/governor-fleet.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';
import { governedCall, type Admission } from '../../src/domain/ports/governor.port.js';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { sleep, waitFor, type RedisProcess } from '../support/redis-harness.js';

const hasher = new HmacKeyHasher('test-secret');
const LIMITS = { enabled: true, maxConcurrent: 50, pointsPerMinute: 800, writeSpacingMs: 0, maxWaitMs: 0, leaseMs: 250 };
const fleets = new GovernorFleets({ prefix: 'lease', limits: LIMITS, commandTimeoutMs: 500, pollMs: 5 });
const caches = fleets.caches;
let redis: RedisProcess;
let tokens = 0;

test.before(async () => {
  await fleets.start();
  redis = fleets.redis;
});

test.after.always(() => fleets.close());

/** Replicas' governors on one Redis, under a key prefix of their own, each subscribed to the hold messages. */
async function fleet(limits: Partial<typeof LIMITS> & Partial<RedisGovernorOptions> = {}, replicas = 2) {
  const { governors: out, keyPrefix } = await fleets.fleet(limits, replicas);
  // the subscriber connects at the first read that reaches Redis
  await Promise.all(out.map((g) => turn(g, hasher.partitionOf('token warm-up'))));
  await waitFor('subscribed', () => out.every((g) => g.store.leasing), 5000, 5);
  return { governors: out, keyPrefix };
}

const fresh = () => hasher.partitionOf(`token lease-${tokens++}`);

/** Script calls Redis has run so far (EVALSHA and EVAL), from INFO commandstats. */
async function scriptCalls(): Promise<number> {
  const info = await redis.cli('INFO', 'commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

/** Points counted in Redis' window for a partition now. */
async function pointsInRedis(governor: RedisGovernor, partition: string): Promise<number> {
  const fields = (await redis.cli('HGETALL', governor.store.keysOf(partition).points)).split('\n').filter(Boolean);
  let total = 0;
  for (let i = 1; i < fields.length; i += 2) total += Number(fields[i]);
  return total;
}

let answeredAtOnce = 0;

/** A turn as GovernedUpstream takes it: admitNow (a lease answers without Redis), else acquire. */
async function turn(governor: RedisGovernor, partition: string): Promise<Admission> {
  const call = governedCall(partition, 'GET');
  const now = governor.admitNow(call);
  if (now !== undefined) answeredAtOnce++;
  const admission = now ?? (await governor.acquire(call));
  if (admission.kind === 'admitted') admission.permit.release(true);
  return admission;
}

test.serial('a busy credential on one replica: far fewer script calls than upstream calls, most admitted from leases', async (t) => {
  const bus = new EventEmitter2Bus(() => undefined);
  let leased = 0;
  bus.on('governor.decided', (event) => {
    if (event.leased === true) leased++;
  });
  // leases of 2 s: each ends when its 20 points are spent, not on the clock, however slow the machine
  const { governors: [a] } = await fleet({ events: bus, leaseMs: 2000 }, 1);
  if (!a) throw new Error('one replica');
  const partition = fresh();
  await turn(a, partition);
  const before = await scriptCalls();
  const atOnceBefore = answeredAtOnce;
  const calls = 200;
  for (let i = 0; i < calls; i++) t.is((await turn(a, partition)).kind, 'admitted');
  const spent = (await scriptCalls()) - before;
  const atOnce = answeredAtOnce - atOnceBefore;
  t.log(`${spent} script calls, ${leased} leased, ${atOnce} answered by admitNow`);
  t.true(atOnce >= calls - spent - 1 && atOnce <= leased, `${atOnce} answered at once: the leased ones, without a promise`);
  t.true(spent <= calls / 5, `${spent} script calls for ${calls} upstream calls`);
  t.is(a.store.leasedAdmissions, leased, 'each leased admission told the bus (github_mirror_governor_leased_total)');
  t.true(leased >= calls * 0.8, `${leased} of ${calls} admitted from a lease`);
  t.is(await pointsInRedis(a, partition) >= calls + 1, true, 'every call counted in the fleet-wide window');
});

test.serial('two replicas leasing never put more than maxConcurrent in flight fleet-wide', async (t) => {
  const maxConcurrent = 32; // leases of 2 slots, granted up to 16 in flight
  const { governors: [a, b] } = await fleet({ maxConcurrent, maxWaitMs: 20_000, pointsPerMinute: 100_000 });
  if (!a || !b) throw new Error('two replicas');
  const partition = fresh();
  let inFlight = 0;
  let peak = 0;
  const outcomes: string[] = [];
  const worker = async (governor: RedisGovernor, w: number) => {
    for (let i = 0; i < 40; i++) {
      const admission = await governor.acquire(governedCall(partition, 'GET'));
      outcomes.push(admission.kind);
      if (admission.kind !== 'admitted') continue;
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep((w + i) % 4); // the call at "GitHub"
      inFlight--;
      admission.permit.release(true);
      await sleep((w * 7 + i) % 6);
    }
  };
  // 48 callers for 32 slots: saturated at times (no leases then), far below at others (leases)
  await Promise.all(Array.from({ length: 48 }, (_, w) => worker(w % 2 === 0 ? a : b, w)));
  t.log(`peak ${peak}, leased ${a.store.leasedAdmissions + b.store.leasedAdmissions} of ${outcomes.length}`);
  t.true(peak <= maxConcurrent, `peak in flight: ${peak}`);
  t.deepEqual([...new Set(outcomes)], ['admitted']);
  t.true(a.store.leasedAdmissions + b.store.leasedAdmissions > 0, 'leases were used');
  await waitFor('every slot given back', async () => Number(await redis.cli('ZCARD', a.store.keysOf(partition).slots)) === 0, 5000, 20);
  t.pass();
});

test.serial('the points budget holds with leases: never more than pointsPerMinute admitted, unspent lease points given back', async (t) => {
  const pointsPerMinute = 400; // leases of 10 points, granted up to 200 in the window
  const { governors: [a, b] } = await fleet({ pointsPerMinute });
  if (!a || !b) throw new Error('two replicas');
  const partition = fresh();
  let admitted = 0;
  const worker = async (governor: RedisGovernor) => {
    for (let i = 0; i < 150; i++) if ((await turn(governor, partition)).kind === 'admitted') admitted++;
  };
  await Promise.all([worker(a), worker(b), worker(a), worker(b)]);
  t.log(`${admitted} admitted, ${a.store.leasedAdmissions + b.store.leasedAdmissions} leased`);
  t.true(admitted <= pointsPerMinute, `${admitted} admitted`);
  t.true(admitted >= pointsPerMinute - 20, `the budget is used: ${admitted} admitted`);
  t.true(a.store.leasedAdmissions + b.store.leasedAdmissions > 0, 'leases were used');
  // once the leases are over, Redis counts exactly the calls made: what the leases did not spend came back
  await waitFor('leases over, points given back', async () => a.store.leaseCount === 0 && b.store.leaseCount === 0 && (await pointsInRedis(a, partition)) === admitted, 5000, 20);
  t.is(await pointsInRedis(a, partition), admitted);
});

test.serial('a lease ends on its own: its slots and unspent points go back to Redis', async (t) => {
  // 2 s: the lease surely still runs while its slots and points are looked at, even on a loaded machine
  const { governors: [a] } = await fleet({ leaseMs: 2000 }, 1);
  if (!a) throw new Error('one replica');
  const partition = fresh();
  await turn(a, partition);
  await turn(a, partition); // busy: this one gets a lease (3 slots, 20 points)
  t.is(a.store.leaseCount, 1);
  // the first call's slot went back; the second's joined the lease: with the lease's 3, in flight fleet-wide
  await waitFor('the lease’s 4 slots in flight', async () => Number(await redis.cli('ZCARD', a.store.keysOf(partition).slots)) === 4, 5000, 2);
  t.is(await pointsInRedis(a, partition), 2 + 20, 'its points are charged up front');
  const leased = a.store.leasedAdmissions;
  const held = await a.acquire(governedCall(partition, 'GET'));
  if (held.kind !== 'admitted') throw new Error('admitted');
  t.is(a.store.leasedAdmissions, leased + 1, 'admitted from the lease');
  // nobody calls again: the sweeper ends the lease; the slot still in use stays in flight
  await waitFor('lease over', async () => a.store.leaseCount === 0 && Number(await redis.cli('ZCARD', a.store.keysOf(partition).slots)) === 1, 5000, 10);
  t.is(await pointsInRedis(a, partition), 3, '17 unspent points given back');
  held.permit.release(false); // never sent: its point comes back too
  await waitFor('slot and point back', async () => Number(await redis.cli('ZCARD', a.store.keysOf(partition).slots)) === 0 && (await pointsInRedis(a, partition)) === 2, 5000, 10);
  t.pass();
});

test.serial('a hold published by replica A ends replica B’s lease: B sends nothing once the message is delivered', async (t) => {
  const { governors: [a, b] } = await fleet({ leaseMs: 60_000 });
  if (!a || !b) throw new Error('two replicas');
  const partition = fresh();
  await turn(b, partition);
  await turn(b, partition);
  t.is(b.store.leaseCount, 1, 'B holds a lease');
  const leasedBefore = b.store.leasedAdmissions;
  t.is((await turn(b, partition)).kind, 'admitted');
  t.is(b.store.leasedAdmissions, leasedBefore + 1, 'B admits from its lease');
  await a.hold(partition, 30_000);
  await waitFor('the hold message delivered to B', () => b.memory.heldForMs(partition) > 0, 5000, 1);
  t.is(b.store.leaseCount, 0, 'B dropped its lease');
  const before = await scriptCalls();
  const held = await b.acquire(governedCall(partition, 'GET'));
  t.is(held.kind, 'held');
  t.true(held.kind === 'held' && held.retryAfterMs > 20_000 && held.retryAfterMs <= 30_000, JSON.stringify(held));
  t.is(await scriptCalls(), before, 'answered from the hold B learnt, without asking Redis');
  t.is(b.store.leasedAdmissions, leasedBefore + 1, 'nothing more admitted from the lease');
  t.is((await turn(b, fresh())).kind, 'admitted', 'other credentials go on');
  await waitFor('B’s lease slots given back', async () => Number(await redis.cli('ZCARD', b.store.keysOf(partition).slots)) === 0, 5000, 10);
  t.pass();
});

test.serial('a hold message that comes while B’s acquire is on its way: its call is not sent, the lease it brings is not kept', async (t) => {
  const { governors: [a, b] } = await fleet({ leaseMs: 60_000 });
  const client = caches.at(-1)?.client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  if (!a || !b || client === undefined) throw new Error('two replicas');
  const partition = fresh();
  await turn(b, partition); // busy from now on: B's next read asks for a lease
  const acquire = client['mirrorGovernorAcquire'] as (...args: unknown[]) => Promise<unknown>;
  // B's script runs (turn and lease granted), then A's hold is published and reaches B, then B reads the reply
  let granted = false;
  client['mirrorGovernorAcquire'] = async (...args: unknown[]) => {
    const reply = await acquire.apply(client, args);
    granted = Array.isArray(reply) && reply.length === 4;
    await a.hold(partition, 30_000);
    await waitFor('the hold message delivered to B', () => b.memory.heldForMs(partition) > 0, 5000, 1);
    return reply;
  };
  try {
    const answer = await b.acquire(governedCall(partition, 'GET'));
    t.is(answer.kind, 'held');
  } finally {
    client['mirrorGovernorAcquire'] = acquire;
  }
  t.true(granted, 'the script granted a lease');
  t.is(b.store.leaseCount, 0, 'the lease granted before the hold is not kept');
  // the call's slot and point and the lease's slots and points all go back
  await waitFor('given back', async () => Number(await redis.cli('ZCARD', b.store.keysOf(partition).slots)) === 0 && (await pointsInRedis(b, partition)) === 1, 5000, 10);
  t.pass();
});

test.serial('a replica without leases publishes its holds too: a leasing replica ends its lease at once', async (t) => {
  const { governors: [b], keyPrefix } = await fleet({ leaseMs: 60_000 }, 1);
  if (!b) throw new Error('one replica');
  const cache = new RedisCache({ url: redis.url, keyPrefix, commandTimeoutMs: 500 });
  caches.push(cache);
  await cache.start();
  const a = fleets.track(new RedisGovernor({ ...LIMITS, leaseMs: 0, clock: systemClock, client: cache.client, keyPrefix }));
  t.false(a.store.leasing, 'no subscriber without leases');
  const partition = fresh();
  await turn(b, partition);
  await turn(b, partition);
  t.is(b.store.leaseCount, 1);
  await a.hold(partition, 30_000);
  await waitFor('the hold message delivered to B', () => b.memory.heldForMs(partition) > 0, 5000, 1);
  t.is(b.store.leaseCount, 0);
  t.is((await b.acquire(governedCall(partition, 'GET'))).kind, 'held');
});

test.serial('subscriber killed (CLIENT KILL TYPE pubsub): no leases until subscribed again, then leases again', async (t) => {
  const { governors: [a] } = await fleet({ leaseMs: 60_000 }, 1);
  if (!a) throw new Error('one replica');
  const partition = fresh();
  await turn(a, partition);
  await turn(a, partition);
  t.is(a.store.leaseCount, 1);
  // no channel for the default user: the subscriber cannot subscribe again until it is given back
  await redis.cli('ACL', 'SETUSER', 'default', 'resetchannels');
  try {
    await redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor('subscription lost', () => !a.store.leasing, 5000, 1);
    t.is(a.store.leaseCount, 0, 'the lease was dropped with the subscription');
    await sleep(100); // reconnected by now, its SUBSCRIBE refused
    t.false(a.store.leasing);
    const before = await scriptCalls();
    const leased = a.store.leasedAdmissions;
    for (let i = 0; i < 20; i++) t.is((await turn(a, partition)).kind, 'admitted');
    t.is(a.store.leasedAdmissions, leased, 'no call admitted from a lease');
    t.is(a.store.leaseCount, 0, 'no lease granted');
    t.true((await scriptCalls()) - before >= 20, 'one script call per call');
  } finally {
    await redis.cli('ACL', 'SETUSER', 'default', 'allchannels');
  }
  await waitFor('subscribed again', () => a.store.leasing, 5000, 10);
  await turn(a, partition);
  await turn(a, partition);
  t.is(a.store.leaseCount, 1, 'leases again');
});

test.serial('Redis errors and connection changes drop the leases; the memory counters answer meanwhile', async (t) => {
  const bus = new EventEmitter2Bus(() => undefined);
  const { governors: [a] } = await fleet({ leaseMs: 60_000, cacheEvents: bus }, 1);
  if (!a) throw new Error('one replica');
  const partition = fresh();
  await turn(a, partition);
  await turn(a, partition);
  t.is(a.store.leaseCount, 1);
  bus.emit({ name: 'cache.error', backend: 'redis', operation: 'lookup', code: 'BREAKER_TIMEOUT', message: 'no answer' });
  t.is(a.store.leaseCount, 0, 'a Redis error on the same Redis drops the lease');
  t.is((await turn(a, partition)).kind, 'admitted', 'the memory counters answer');
  await waitFor('back on Redis with a lease', async () => {
    await turn(a, partition);
    return a.store.leaseCount === 1;
  }, 5000, 50);
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
  await waitFor('connection change seen', () => a.store.leaseCount === 0, 5000, 1);
  t.pass();
});
