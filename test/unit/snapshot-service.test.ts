/**
 * The snapshot schedule around the use cases, on a FakeClock (no real timers): the memory backend's
 * final snapshot at stop, restore at start (not ready meanwhile) and a stop that cuts it short, the
 * next interval snapshotting a restored cache, a shared cache that turns empty restored at the next
 * interval, a restore lease held elsewhere, a reconnect. The policy itself: snapshot-policy.test.ts.
 */
import test from 'ava';
import { SnapshotService, type SnapshotServiceOptions } from '../../src/app/snapshot-service.js';
import { RESTORE_LEASE } from '../../src/domain/use-cases/restore-when-lost.js';
import { LocalLease } from '../../src/adapters/lease/local-lease.adapter.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';
import { FakeDump, FakeStore, SharedFakeLease } from './snapshot-fakes.js';

function service(dump: FakeDump, store: FakeStore, lease: LeasePort, clock: FakeClock, options: Partial<SnapshotServiceOptions> = {}): SnapshotService {
  return new SnapshotService({ dump, store, lease, events: new RecordingBus(), clock }, { intervalMs: 60_000, retain: 5, snapshotOnStop: false, ...options });
}

/** A store holding one snapshot of `entries` (taken by a replica of its own). */
async function storeWith(clock: FakeClock, entries: Record<string, string>): Promise<FakeStore> {
  const store = new FakeStore();
  const source = new FakeDump(clock);
  for (const [key, value] of Object.entries(entries)) source.put(key, value, 600_000);
  await service(source, store, new LocalLease(clock), clock).snapshotNow();
  return store;
}

/** Lets promises run (no timer, no clock advance) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

test('memory backend: stop takes a final snapshot', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  const s = service(dump, store, new LocalLease(clock), clock, { snapshotOnStop: true });
  await s.start();
  dump.put('k', 'v', 600_000);
  await s.stop();
  t.is(store.snapshots.length, 1);
  t.is(store.snapshots[0]?.info.entries, 1);
  t.is(clock.pending, 0, 'no timer left behind');
});

test('start restores an empty cache and is not ready meanwhile; stop during it cuts it short and skips the final snapshot', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v'])));

  const target = new FakeDump(clock);
  let open!: () => void;
  store.readGate = new Promise((resolve) => (open = resolve));
  const s = service(target, store, new LocalLease(clock), clock, { snapshotOnStop: true });
  const starting = s.start();
  await until(() => s.readiness().restoring, 'the restore to begin');
  t.like(s.readiness(), { ready: false, restoring: true });
  open();
  await starting;
  t.like(s.readiness(), { ready: true, restoring: false, restore: { restored: 9 } });

  const again = new FakeDump(clock);
  let resume!: () => void;
  store.readGate = new Promise((resolve) => (resume = resolve));
  const cut = service(again, store, new LocalLease(clock), clock, { snapshotOnStop: true });
  const pending = cut.start();
  await until(() => cut.readiness().restoring, 'the second restore to begin');
  const stopping = cut.stop();
  store.readGate = undefined;
  resume();
  await Promise.all([stopping, pending]);
  t.true(again.items.size < 9, 'cut short');
  t.false(again.marked, 'a cut-short restore leaves no mark: another replica restores the rest');
  t.is(store.snapshots.length, 1, 'no final snapshot of a half-restored cache');
  await s.stop();
});

test('after a restore the mark stays: the next interval snapshots instead of restoring again', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });
  const target = new FakeDump(clock);
  const s = service(target, store, new SharedFakeLease(clock, 'r1'), clock, { intervalMs: 20, jitter: 0 });
  await s.start();
  t.true(target.marked);
  clock.advance(20);
  await until(() => store.snapshots.length >= 2, 'a scheduled snapshot of the restored cache');
  await s.stop();
  t.is(await s.restoreNow(), undefined, 'marked and not empty: nothing to restore');
});

test('another replica holding the restore lease: this one serves without restoring', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });
  const lease = new SharedFakeLease(clock, 'other');
  t.true(await lease.acquire(RESTORE_LEASE, 30_000));
  const target = new FakeDump(clock);
  const s = service(target, store, lease.as('me'), clock);
  await s.start();
  t.true(s.readiness().ready);
  t.true(await target.isEmpty());
  await s.stop();
});

test('a shared cache that turns empty while running is restored at the next interval', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  for (let i = 0; i < 5; i++) dump.put(`k${i}`, 'v', 600_000);
  const s = service(dump, store, new SharedFakeLease(clock, 'a'), clock, { intervalMs: 20, jitter: 0 });
  await s.start();
  clock.advance(20);
  await until(() => store.snapshots.length >= 1, 'a scheduled snapshot');
  dump.items.clear();
  clock.advance(60_000);
  await until(() => dump.items.size === 5, 'the restore at the next interval');
  await s.stop();
  t.is(dump.value('k3'), 'v');
});

test('the shared cache back after an outage: restored at once when it lost its data; a cache of its own is left to the schedule', async (t) => {
  const clock = new FakeClock();
  const store = await storeWith(clock, { a: '1' });

  const emptied = new FakeDump(clock);
  const shared = service(emptied, store, new SharedFakeLease(clock, 'r1'), clock, { restoreOnStart: true });
  t.is((await shared.primaryBack())?.outcome, 'ok');
  t.is(emptied.value('a'), '1');
  t.is(await shared.primaryBack(), undefined, 'restored and marked: nothing to do');

  t.is(await service(new FakeDump(clock), store, new LocalLease(clock), clock).primaryBack(), undefined);
});
