/**
 * The snapshot policy as use cases, with fakes on a FakeClock: one snapshot per interval across
 * replicas sharing a lease (a failed one gives the interval back), and restore-when-lost: the mark
 * that tells a cache that lost its data (restored even with a few new entries) from one that holds
 * it, when the mark is left, the restore lease respected, the lease renewed while a restore runs.
 */
import test from 'ava';
import { SnapshotPerInterval, SNAPSHOT_LEASE } from '../../src/domain/use-cases/snapshot-per-interval.js';
import { RestoreWhenLost, RESTORE_LEASE } from '../../src/domain/use-cases/restore-when-lost.js';
import { EventName, type SnapshotWorkSkippedEvent } from '../../src/domain/events/events.js';
import { LocalLease } from '../../src/adapters/lease/local-lease.adapter.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';
import { FakeDump, FakeStore, SharedFakeLease } from './snapshot-fakes.js';

const INTERVAL_MS = 60_000;

function perInterval(dump: FakeDump, store: FakeStore, lease: LeasePort, clock: FakeClock, bus = new RecordingBus()): SnapshotPerInterval {
  return new SnapshotPerInterval(dump, store, lease, bus, clock, { intervalMs: INTERVAL_MS, retain: 5 });
}

function restoreWhenLost(dump: FakeDump, store: FakeStore, lease: LeasePort, clock: FakeClock, bus = new RecordingBus()): RestoreWhenLost {
  return new RestoreWhenLost(dump, store, lease, bus, clock);
}

/** A store holding one snapshot of `entries` (taken on a replica of its own). */
async function storeWith(clock: FakeClock, entries: Record<string, string>, store = new FakeStore()): Promise<FakeStore> {
  const dump = new FakeDump(clock);
  for (const [key, value] of Object.entries(entries)) dump.put(key, value, 600_000);
  await perInterval(dump, store, new LocalLease(clock), clock).execute({ trigger: 'manual' });
  return store;
}

/** Two replicas a and b snapshotting one shared cache (holding one entry) with one shared lease. */
function twoReplicas() {
  const clock = new FakeClock();
  const store = new FakeStore();
  const shared = new FakeDump(clock);
  shared.put('k', 'v', 600_000);
  const lease = new SharedFakeLease(clock, 'a');
  const bus = new RecordingBus();
  return { clock, store, shared, bus, a: perInterval(shared, store, lease, clock, bus), b: perInterval(shared, store, lease.as('b'), clock, bus) };
}

const skips = (bus: RecordingBus): Array<Pick<SnapshotWorkSkippedEvent, 'work' | 'cause' | 'trigger'>> =>
  (bus.named(EventName.snapshotWorkSkipped) as SnapshotWorkSkippedEvent[]).map(({ work, cause, trigger }) => ({ work, cause, trigger }));

test('replicas sharing a lease: one snapshot per interval, the next interval is anyone’s', async (t) => {
  const { clock, store, bus, a, b } = twoReplicas();
  t.is((await a.execute({ trigger: 'manual' }))?.outcome, 'ok');
  t.is(await b.execute({ trigger: 'manual' }), undefined, 'b waits: a took this interval');
  t.is(await a.execute({ trigger: 'manual' }), undefined, 'a too: one per interval');
  t.deepEqual(skips(bus), [
    { work: 'snapshot', cause: 'lease_held', trigger: 'manual' },
    { work: 'snapshot', cause: 'lease_held', trigger: 'manual' },
  ]);
  clock.advance(INTERVAL_MS);
  t.is((await b.execute({ trigger: 'manual' }))?.outcome, 'ok');
  t.is(store.snapshots.length, 2);
});

test('a failed snapshot gives the interval back to the other replicas', async (t) => {
  const { shared: dump, a, b } = twoReplicas();
  const entries = dump.entries.bind(dump);
  dump.entries = async function* () {
    await Promise.resolve();
    if (dump.items.size > 0) throw new Error('redis down');
    yield [];
  };
  t.is((await a.execute({ trigger: 'manual' }))?.outcome, 'failed');
  dump.entries = entries;
  t.is((await b.execute({ trigger: 'manual' }))?.outcome, 'ok');
});

test('a cache of its own (memory): the lease goes back after each snapshot; a lease that does not answer skips the snapshot', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('k', 'v', 600_000);
  const local = perInterval(dump, store, new LocalLease(clock), clock);
  t.is((await local.execute({ trigger: 'manual' }))?.outcome, 'ok');
  t.is((await local.execute({ trigger: 'manual' }))?.outcome, 'ok', 'not shared: no interval to wait for');

  const bus = new RecordingBus();
  const down: LeasePort = { shared: true, acquire: () => Promise.reject(new Error('ECONNREFUSED')), renew: () => Promise.resolve(false), release: () => Promise.resolve() };
  t.is(await perInterval(dump, store, down, clock, bus).execute({ trigger: 'interval' }), undefined);
  t.deepEqual(skips(bus), [{ work: 'snapshot', cause: 'lease_unreachable', trigger: 'interval' }]);
  t.is(store.snapshots.length, 2);
});

test('a cache that holds its data (marked by an earlier restore) is left alone', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });
  const target = new FakeDump(clock);
  target.put('live', 'x', 600_000);
  target.marked = true;
  const bus = new RecordingBus();
  t.is(await restoreWhenLost(target, store, new LocalLease(clock), clock, bus).execute({ trigger: 'start' }), undefined);
  t.is(target.value('a'), undefined);
  t.deepEqual(skips(bus), [{ work: 'restore', cause: 'holds_data', trigger: 'start' }]);
});

test('a cache that lost its data is restored even when a few entries were written into it since; they are kept', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: 'old', b: '2' });
  const target = new FakeDump(clock); // a Redis back without its data: no mark
  target.put('a', 'new', 600_000); // a miss some replica stored before the restore began
  const bus = new RecordingBus();
  const result = await restoreWhenLost(target, store, new SharedFakeLease(clock, 'r1'), clock, bus).execute({ trigger: 'reconnect' });
  t.is(result?.outcome, 'ok');
  t.is(target.value('a'), 'new');
  t.is(target.value('b'), '2');
  t.true(target.marked);
  t.like(bus.named(EventName.restoreStarted)[0], { trigger: 'reconnect', store: 'fake', backend: 'fake', cause: 'unmarked' });
});

test('the mark: left when there is nothing to restore or every snapshot is refused, not when the store is unreachable', async (t) => {
  const clock = new FakeClock();
  const none = new FakeDump(clock);
  await restoreWhenLost(none, new FakeStore(), new LocalLease(clock), clock).execute({ trigger: 'start' });
  t.true(none.marked, 'no snapshot at all: settled');

  const corrupt = await storeWith(clock, { a: '1' });
  corrupt.snapshots[0]!.corruptAfter = 0;
  const refused = new FakeDump(clock);
  const result = await restoreWhenLost(refused, corrupt, new LocalLease(clock), clock).execute({ trigger: 'manual' });
  t.is(result?.outcome, 'failed');
  t.true(refused.marked, 'every snapshot refused: trying again every interval would find the same ones');

  const down = new FakeStore();
  down.listFails = true;
  const unreachable = new FakeDump(clock);
  await restoreWhenLost(unreachable, down, new LocalLease(clock), clock).execute({ trigger: 'start' });
  t.false(unreachable.marked, 'the store did not answer: the next check tries again');
});

test('another replica holding the restore lease: this one does not restore', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });
  const lease = new SharedFakeLease(clock, 'other');
  t.true(await lease.acquire(RESTORE_LEASE, 30_000));
  const target = new FakeDump(clock);
  const bus = new RecordingBus();
  t.is(await restoreWhenLost(target, store, lease.as('me'), clock, bus).execute({ trigger: 'start' }), undefined);
  t.true(await target.isEmpty());
  t.deepEqual(skips(bus), [{ work: 'restore', cause: 'lease_held', trigger: 'start' }]);
});

test('restored by another replica between the check and the lease: checked again under the lease, not restored twice', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });
  const target = new FakeDump(clock);
  const lease = new SharedFakeLease(clock, 'me');
  const acquire = lease.acquire.bind(lease);
  lease.acquire = (name, ttlMs) => {
    target.put('a', 'restored elsewhere', 600_000);
    target.marked = true;
    return acquire(name, ttlMs);
  };
  const bus = new RecordingBus();
  t.is(await restoreWhenLost(target, store, lease, clock, bus).execute({ trigger: 'interval' }), undefined);
  t.is(target.value('a'), 'restored elsewhere');
  t.deepEqual(skips(bus), [{ work: 'restore', cause: 'restored_elsewhere', trigger: 'interval' }]);
  t.true(await lease.acquire(RESTORE_LEASE, 1), 'the lease was given back');
});

test('the restore lease is renewed while a long restore runs and given back after it; a shared cache that lost its data is told apart', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1', b: '2', c: '3', d: '4' });
  const target = new FakeDump(clock);
  const lease = new SharedFakeLease(clock, 'me');
  const policy = new RestoreWhenLost(target, store, lease, new RecordingBus(), clock, { leaseMs: 3_000 });
  t.true(await policy.sharedCacheLostData());
  t.false(await restoreWhenLost(target, store, new LocalLease(clock), clock).sharedCacheLostData(), 'a cache of its own is never restored by an interval');

  let open!: () => void;
  store.readGate = new Promise((resolve) => (open = resolve));
  const restoring = policy.execute({ trigger: 'start' });
  await clock.run(10_000, 500); // more than three times the lease: only renewals keep it
  t.false(await lease.as('other').acquire(RESTORE_LEASE, 1_000), 'still held: renewed');
  open();
  t.is((await restoring)?.outcome, 'ok');
  t.true(await lease.as('other').acquire(RESTORE_LEASE, 1_000), 'released once the restore settled');
  t.false(await policy.sharedCacheLostData(), 'restored and marked');
});

test('the snapshot lease is taken for 90 % of the interval and kept after a good snapshot', async (t) => {
  const clock = new FakeClock();
  const dump = new FakeDump(clock);
  dump.put('k', 'v', 600_000);
  const lease = new SharedFakeLease(clock, 'a');
  t.is((await perInterval(dump, new FakeStore(), lease, clock).execute({ trigger: 'interval' }))?.outcome, 'ok');
  clock.advance(INTERVAL_MS * 0.9 - 1);
  t.false(await lease.as('b').acquire(SNAPSHOT_LEASE, 1), 'still this interval’s');
  clock.advance(1);
  t.true(await lease.as('b').acquire(SNAPSHOT_LEASE, 1), 'expired at 90 % of the interval');
});
