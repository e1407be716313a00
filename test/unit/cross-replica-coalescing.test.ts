/**
 * Cross-replica coalescing in the use case: several ResolveResource instances ("replicas") sharing
 * one cache and one lease make one upstream call for a cold key; a winner that leaves no entry hands
 * the turn to the next replica instead of making everyone wait; a slow winner keeps its lease.
 * Everything runs on a FakeClock: the upstream's delays, the lease's expiry, the polls, the renewals.
 */
import test from 'ava';
import { ResolveResource } from '../../src/domain/use-cases/resolve-resource.js';
import { CrossReplicaCoalescing } from '../../src/domain/use-cases/cross-replica-coalescing.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { EventName } from '../../src/domain/events/events.js';
import { FakeClock, RecordingBus, PlainKeyHasher, ScriptedUpstream, json, dec } from '../support/fakes.js';
import { get } from '../support/use-case-suite.js';

/** A lease shared by every replica of the test, like one Redis, expiring on the fake clock. */
class SharedLease implements LeasePort {
  readonly shared = true;
  readonly held = new Map<string, number>();
  renewals = 0;
  /** Time each acquire takes, as a round trip to Redis would. */
  acquireDelayMs = 0;
  constructor(private readonly clock: FakeClock) {}
  async acquire(name: string, ttlMs: number): Promise<boolean> {
    if (this.acquireDelayMs > 0) await this.clock.sleep(this.acquireDelayMs);
    const until = this.held.get(name);
    if (until !== undefined && until > this.clock.now()) return false;
    this.held.set(name, this.clock.now() + ttlMs);
    return true;
  }
  renew(name: string, ttlMs: number): Promise<boolean> {
    const until = this.held.get(name);
    if (until === undefined || until <= this.clock.now()) return Promise.resolve(false);
    this.renewals += 1;
    this.held.set(name, this.clock.now() + ttlMs);
    return Promise.resolve(true);
  }
  release(name: string): Promise<void> {
    this.held.delete(name);
    return Promise.resolve();
  }
}

function replicas(count: number, respond: (clock: FakeClock) => ConstructorParameters<typeof ScriptedUpstream>[0], waitMs = 2000) {
  const clock = new FakeClock();
  const cache = new MemoryCache({ maxBytes: 1 << 20, clock });
  const lease = new SharedLease(clock);
  const upstream = new ScriptedUpstream(respond(clock));
  const bus = new RecordingBus();
  const list = Array.from(
    { length: count },
    () =>
      new ResolveResource(
        cache,
        upstream,
        new PlainKeyHasher(),
        bus,
        clock,
        { ttlSeconds: 60, maxEntryBytes: 1 << 20, freshnessMs: 0 },
        new CrossReplicaCoalescing(lease, clock, { waitMs, pollMs: 5 }),
      ),
  );
  return { list, upstream, bus, lease, clock };
}

/** An upstream that answers after `delayMs` of fake time. */
const after = (delayMs: number, answer: () => ReturnType<typeof json>) => (clock: FakeClock) => async () => {
  await clock.sleep(delayMs);
  return answer();
};

/** Moves the fake clock in steps until `work` settles; fails when it has not after `limitMs` of fake time. */
async function settle<T>(clock: FakeClock, work: Promise<T>, limitMs: number, stepMs = 1): Promise<T> {
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  work.then(done, done);
  for (let elapsed = 0; !settled && elapsed < limitMs; elapsed += stepMs) await clock.run(stepMs, stepMs);
  if (!settled) throw new Error(`not settled after ${limitMs} ms of fake time`);
  return work;
}

test('a cold key requested on 10 replicas at once costs one upstream call', async (t) => {
  const { list, upstream, bus, clock } = replicas(10, after(50, () => json(200, { v: 1 }, { etag: '"a"' })));
  const answers = await settle(clock, Promise.all(list.map((r) => r.execute(get('/repos/o/cold')))), 2000);
  t.is(upstream.requests.length, 1);
  t.true(answers.every((a) => a.status === 200 && JSON.parse(dec(a.body)).v === 1));
  t.is(answers.filter((a) => a.collapsed).length, 9);
  t.is(bus.named(EventName.coalesced).length, 9);
});

test('a winner that leaves no entry (404) hands the turn on: no replica waits out the whole window', async (t) => {
  // waiting out the 10-minute window would outlast the 30 s of fake time given here
  t.timeout(30_000);
  const { list, upstream, clock } = replicas(3, after(50, () => json(404, { message: 'Not Found' })), 600_000);
  const answers = await settle(clock, Promise.all(list.map((r) => r.execute(get('/repos/o/missing')))), 30_000, 5);
  t.true(answers.every((a) => a.status === 404));
  t.is(upstream.requests.length, 3);
});

test('a lease that cannot be had (Redis trouble) means calling upstream as a lone replica', async (t) => {
  const { list, upstream, lease, clock } = replicas(2, () => () => json(200, { v: 1 }, { etag: '"a"' }));
  lease.acquire = () => Promise.reject(new Error('redis down'));
  const answers = await settle(clock, Promise.all(list.map((r) => r.execute(get('/repos/o/x')))), 2000);
  t.true(answers.every((a) => a.status === 200));
  t.is(upstream.requests.length, 2);
});

test('a winner slower than the lease ttl renews it: the waiting replicas never make a second call', async (t) => {
  // lease ttl 200 ms, the winner's call 300 ms; each waiting round (poll + lookup + a 15 ms acquire)
  // lasts 20 ms, so the waiters' 40 rounds outlast the winner: only an expired lease could hand the
  // key to a second caller
  const { list, upstream, lease, clock } = replicas(3, after(300, () => json(200, { v: 1 }, { etag: '"a"' })), 200);
  lease.acquireDelayMs = 15;
  const answers = await settle(clock, Promise.all(list.map((r) => r.execute(get('/repos/o/slow')))), 2000);
  t.true(answers.every((a) => a.status === 200));
  t.is(upstream.requests.length, 1);
  t.true(lease.renewals >= 2, `renewed ${lease.renewals} times`);
  t.is(lease.held.size, 0, 'released once done');
});
