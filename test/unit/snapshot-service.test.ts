/**
 * The snapshot scheduler with fakes: one snapshot per interval across replicas sharing a lease, the
 * memory backend's final snapshot at stop, restore at start (not ready meanwhile), a shared cache
 * that turns empty restored at the next interval, the restore lease respected, the mark that tells a
 * cache that lost its data (restored even with a few new entries) from one that holds it.
 */
import test from 'ava';
import { SnapshotService, RESTORE_LEASE, type SnapshotServiceOptions } from '../../src/app/snapshot-service.js';
import { LocalLease } from '../../src/adapters/lease/local-lease.adapter.js';
import { createLogger } from '../../src/app/logger.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';
import { FakeDump, FakeStore, SharedFakeLease } from './snapshot-fakes.js';

const logger = createLogger('silent');

function service(dump: FakeDump, store: FakeStore, lease: LeasePort, clock: FakeClock, options: Partial<SnapshotServiceOptions> = {}): SnapshotService {
  return new SnapshotService(
    { dump, store, lease, events: new RecordingBus(), clock, logger },
    { intervalMs: 60_000, retain: 5, snapshotOnStop: false, ...options },
  );
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('replicas sharing a lease: one snapshot per interval, the next interval is anyone’s', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const shared = new FakeDump(clock);
  shared.put('k', 'v', 600_000);
  const lease = new SharedFakeLease(clock, 'a');
  const a = service(shared, store, lease, clock);
  const b = service(shared, store, lease.as('b'), clock);
  t.is((await a.snapshotNow())?.outcome, 'ok');
  t.is(await b.snapshotNow(), undefined, 'b waits: a took this interval');
  t.is(await a.snapshotNow(), undefined, 'a too: one per interval');
  clock.advance(60_000);
  t.is((await b.snapshotNow())?.outcome, 'ok');
  t.is(store.snapshots.length, 2);
});

test('a failed snapshot gives the interval back to the other replicas', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('k', 'v', 600_000);
  const lease = new SharedFakeLease(clock, 'a');
  const a = service(dump, store, lease, clock);
  const b = service(dump, store, lease.as('b'), clock);
  const entries = dump.entries.bind(dump);
  dump.entries = async function* () {
    await Promise.resolve();
    if (dump.items.size > 0) throw new Error('redis down');
    yield [];
  };
  t.is((await a.snapshotNow())?.outcome, 'failed');
  dump.entries = entries;
  t.is((await b.snapshotNow())?.outcome, 'ok');
});

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
});

test('start restores an empty cache and is not ready meanwhile; stop during it cuts it short and skips the final snapshot', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const source = new FakeDump(clock);
  for (let i = 0; i < 9; i++) source.put(`k${i}`, 'v', 600_000);
  await service(source, store, new LocalLease(clock), clock).snapshotNow();

  const target = new FakeDump(clock);
  let open!: () => void;
  store.readGate = new Promise((resolve) => (open = resolve));
  const s = service(target, store, new LocalLease(clock), clock, { snapshotOnStop: true });
  const starting = s.start();
  await waitFor(() => s.readiness().restoring, 'the restore to begin');
  t.like(s.readiness(), { ready: false, restoring: true });
  open();
  await starting;
  t.like(s.readiness(), { ready: true, restoring: false, restore: { restored: 9 } });

  const again = new FakeDump(clock);
  let resume!: () => void;
  store.readGate = new Promise((resolve) => (resume = resolve));
  const cut = service(again, store, new LocalLease(clock), clock, { snapshotOnStop: true });
  const pending = cut.start();
  await waitFor(() => cut.readiness().restoring, 'the second restore to begin');
  const stopping = cut.stop();
  store.readGate = undefined;
  resume();
  await Promise.all([stopping, pending]);
  t.true(again.items.size < 9, 'cut short');
  t.false(again.marked, 'a cut-short restore leaves no mark: another replica restores the rest');
  t.is(store.snapshots.length, 1, 'no final snapshot of a half-restored cache');
});

test('start leaves a cache that holds its data (marked by an earlier restore) alone', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('a', '1', 600_000);
  await service(dump, store, new LocalLease(clock), clock).snapshotNow();
  const target = new FakeDump(clock);
  target.put('live', 'x', 600_000);
  target.marked = true;
  await service(target, store, new LocalLease(clock), clock).start();
  t.is(target.value('a'), undefined);
});

test('a cache that lost its data is restored even when a few entries were written into it since; they are kept', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('a', 'old', 600_000);
  dump.put('b', '2', 600_000);
  await service(dump, store, new LocalLease(clock), clock).snapshotNow();
  const target = new FakeDump(clock); // a Redis back without its data: no mark
  target.put('a', 'new', 600_000); // a miss some replica stored before the restore began
  const result = await service(target, store, new SharedFakeLease(clock, 'r1'), clock).primaryBack();
  t.is(result?.outcome, 'ok');
  t.is(target.value('a'), 'new');
  t.is(target.value('b'), '2');
  t.true(target.marked);
});

test('after a restore the mark stays: the next interval snapshots instead of restoring again', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('a', '1', 600_000);
  await service(dump, store, new LocalLease(clock), clock).snapshotNow();
  const target = new FakeDump(clock);
  const s = service(target, store, new SharedFakeLease(clock, 'r1'), clock, { intervalMs: 20, jitter: 0 });
  await s.start();
  t.true(target.marked);
  await waitFor(() => store.snapshots.length >= 2, 'a scheduled snapshot of the restored cache');
  await s.stop();
  t.is(await s.restoreNow(), undefined, 'marked and not empty: nothing to restore');
});

test('the mark: left when there is nothing to restore or every snapshot is refused, not when the store is unreachable', async (t) => {
  const clock = new FakeClock();
  const none = new FakeDump(clock);
  await service(none, new FakeStore(), new LocalLease(clock), clock).start();
  t.true(none.marked, 'no snapshot at all: settled');

  const corrupt = new FakeStore();
  const source = new FakeDump(clock);
  source.put('a', '1', 600_000);
  await service(source, corrupt, new LocalLease(clock), clock).snapshotNow();
  corrupt.snapshots[0]!.corruptAfter = 0;
  const refused = new FakeDump(clock);
  const result = await service(refused, corrupt, new LocalLease(clock), clock).restoreNow();
  t.is(result?.outcome, 'failed');
  t.true(refused.marked, 'every snapshot refused: trying again every interval would find the same ones');

  const down = new FakeStore();
  down.listFails = true;
  const unreachable = new FakeDump(clock);
  await service(unreachable, down, new LocalLease(clock), clock).start();
  t.false(unreachable.marked, 'the store did not answer: the next check tries again');
});

test('another replica holding the restore lease: this one serves without restoring', async (t) => {
  const clock = new FakeClock();
  const store = new FakeStore();
  const dump = new FakeDump(clock);
  dump.put('a', '1', 600_000);
  await service(dump, store, new LocalLease(clock), clock).snapshotNow();
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
  await waitFor(() => store.snapshots.length >= 1, 'a scheduled snapshot');
  dump.items.clear();
  clock.advance(60_000);
  await waitFor(() => dump.items.size === 5, 'the restore at the next interval');
  await s.stop();
  t.is(dump.value('k3'), 'v');
});
