/**
 * Cross-replica coalescing in the use case: several ResolveResource instances ("replicas") sharing
 * one cache and one lease make one upstream call for a cold key; a winner that leaves no entry hands
 * the turn to the next replica instead of making everyone wait; a slow winner keeps its lease.
 */
import test from 'ava';
import { ResolveResource } from '../../src/domain/use-cases/resolve-resource.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { EventName } from '../../src/domain/events/events.js';
import { RecordingBus, PlainKeyHasher, ScriptedUpstream, json, dec } from '../support/fakes.js';
import { get } from '../support/use-case-suite.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';

/** A lease shared by every replica of the test, like one Redis. */
class SharedLease implements LeasePort {
  readonly shared = true;
  readonly held = new Map<string, number>();
  async acquire(name: string, ttlMs: number): Promise<boolean> {
    if (this.acquireDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.acquireDelayMs));
    const until = this.held.get(name);
    if (until !== undefined && until > Date.now()) return false;
    this.held.set(name, Date.now() + ttlMs);
    return true;
  }
  renewals = 0;
  /** Time each acquire takes, as a round trip to Redis would. */
  acquireDelayMs = 0;
  renew(name: string, ttlMs: number): Promise<boolean> {
    const until = this.held.get(name);
    if (until === undefined || until <= Date.now()) return Promise.resolve(false);
    this.renewals += 1;
    this.held.set(name, Date.now() + ttlMs);
    return Promise.resolve(true);
  }
  release(name: string): Promise<void> {
    this.held.delete(name);
    return Promise.resolve();
  }
}

function replicas(count: number, respond: ConstructorParameters<typeof ScriptedUpstream>[0], waitMs = 2000) {
  const cache = new MemoryCache({ maxBytes: 1 << 20 });
  const lease = new SharedLease();
  const upstream = new ScriptedUpstream(respond);
  const bus = new RecordingBus();
  const list = Array.from(
    { length: count },
    () => new ResolveResource(cache, upstream, new PlainKeyHasher(), bus, systemClock, { ttlSeconds: 60, maxEntryBytes: 1 << 20, freshnessMs: 0, coalesceWaitMs: waitMs, coalescePollMs: 5 }, lease),
  );
  return { list, upstream, bus, lease };
}

const slow = (answer: () => ReturnType<typeof json>) => async () => {
  await new Promise((resolve) => setTimeout(resolve, 50));
  return answer();
};

test('a cold key requested on 10 replicas at once costs one upstream call', async (t) => {
  const { list, upstream, bus } = replicas(10, slow(() => json(200, { v: 1 }, { etag: '"a"' })));
  const answers = await Promise.all(list.map((r) => r.execute(get('/repos/o/cold'))));
  t.is(upstream.requests.length, 1);
  t.true(answers.every((a) => a.status === 200 && JSON.parse(dec(a.body)).v === 1));
  t.is(answers.filter((a) => a.collapsed).length, 9);
  t.is(bus.named(EventName.coalesced).length, 9);
});

test('a winner that leaves no entry (404) hands the turn on: no replica waits out the whole window', async (t) => {
  // waiting out the 10-minute window would fail the test by its own timeout
  t.timeout(30_000);
  const { list, upstream } = replicas(3, slow(() => json(404, { message: 'Not Found' })), 600_000);
  const answers = await Promise.all(list.map((r) => r.execute(get('/repos/o/missing'))));
  t.true(answers.every((a) => a.status === 404));
  t.is(upstream.requests.length, 3);
});

test('a lease that cannot be had (Redis trouble) means calling upstream as a lone replica', async (t) => {
  const { list, upstream, lease } = replicas(2, () => json(200, { v: 1 }, { etag: '"a"' }));
  lease.acquire = () => Promise.reject(new Error('redis down'));
  const answers = await Promise.all(list.map((r) => r.execute(get('/repos/o/x'))));
  t.true(answers.every((a) => a.status === 200));
  t.is(upstream.requests.length, 2);
});

test('a winner slower than the lease ttl renews it: the waiting replicas never make a second call', async (t) => {
  // lease ttl 200 ms, the winner's call 300 ms; each waiting round (poll + lookup + a 15 ms acquire)
  // lasts over 20 ms, so the waiters' 40 rounds outlast the winner: only an expired lease could
  // hand the key to a second caller
  const { list, upstream, lease } = replicas(
    3,
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return json(200, { v: 1 }, { etag: '"a"' });
    },
    200,
  );
  lease.acquireDelayMs = 15;
  const answers = await Promise.all(list.map((r) => r.execute(get('/repos/o/slow'))));
  t.true(answers.every((a) => a.status === 200));
  t.is(upstream.requests.length, 1);
  t.true(lease.renewals >= 2, `renewed ${lease.renewals} times`);
  t.is(lease.held.size, 0, 'released once done');
});
