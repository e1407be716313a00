/**
 * TakeSnapshot and RestoreSnapshot against fakes of their ports: TTLs carried across, expired entries
 * skipped, present entries never replaced, a refused snapshot followed by the next older one,
 * retention, and the events the metrics and /readyz listen to.
 */
import test from 'ava';
import { TakeSnapshot } from '../../src/domain/use-cases/take-snapshot.js';
import { RestoreSnapshot } from '../../src/domain/use-cases/restore-snapshot.js';
import { EventName, type SnapshotEvent } from '../../src/domain/events/events.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';
import { FakeDump, FakeStore } from './snapshot-fakes.js';

function makeSut(retain = 3) {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const source = new FakeDump(clock);
  const target = new FakeDump(clock);
  const store = new FakeStore();
  return {
    clock,
    bus,
    source,
    target,
    store,
    snapshot: new TakeSnapshot(source, store, bus, clock, { retain }),
    restore: new RestoreSnapshot(target, store, bus, clock, { progressEveryMs: 0 }),
    events: (name: string) => bus.named(name) as SnapshotEvent[],
  };
}

test('snapshot then restore: entries come back with the TTL they have left', async (t) => {
  const s = makeSut();
  for (let i = 0; i < 10; i++) s.source.put(`k${i}`, `v${i}`, 60_000);
  const taken = await s.snapshot.execute();
  t.is(taken.outcome, 'ok');
  if (taken.outcome !== 'ok') return;
  t.is(taken.info.entries, 10);
  t.like(s.events(EventName.snapshotCompleted)[0], { outcome: 'ok', entries: 10, store: 'fake', snapshotId: taken.info.id });

  s.clock.advance(20_000);
  const restored = await s.restore.execute();
  t.like(restored, { outcome: 'ok', restored: 10, expired: 0, present: 0, entries: 10 });
  t.is(s.target.value('k3'), 'v3');
  t.is(s.target.ttlOf('k3'), 40_000, '60 s minus the 20 s the snapshot sat in the store');
  const done = s.events(EventName.restoreCompleted);
  t.is(done.length, 1);
  t.like(done[0], { outcome: 'ok', entries: 10, restored: 10, snapshotId: taken.info.id });
  t.true(s.events(EventName.restoreProgress).length >= 1);
  t.true(s.events(EventName.restoreProgress).every((e) => e.outcome === 'in_progress'));
});

test('entries that expired since the snapshot are skipped', async (t) => {
  const s = makeSut();
  s.source.put('short', 'a', 5_000);
  s.source.put('long', 'b', 500_000);
  await s.snapshot.execute();
  s.clock.advance(10_000);
  const restored = await s.restore.execute();
  t.like(restored, { outcome: 'ok', restored: 1, expired: 1 });
  t.is(s.target.value('short'), undefined);
  t.is(s.target.value('long'), 'b');
});

test('an entry already in the cache is never replaced by the snapshot’s older one', async (t) => {
  const s = makeSut();
  s.source.put('k', 'old', 60_000);
  s.source.put('other', 'x', 60_000);
  await s.snapshot.execute();
  s.target.put('k', 'new', 60_000);
  const restored = await s.restore.execute();
  t.like(restored, { outcome: 'ok', restored: 1, present: 1 });
  t.is(s.target.value('k'), 'new');
});

test('an empty cache is not snapshotted (an empty snapshot would push good ones out)', async (t) => {
  const s = makeSut();
  const result = await s.snapshot.execute();
  t.is(result.outcome, 'skipped');
  t.is(s.store.snapshots.length, 0);
  t.like(s.events(EventName.snapshotCompleted)[0], { outcome: 'skipped' });
});

test('only the newest `retain` snapshots are kept', async (t) => {
  const s = makeSut(2);
  s.source.put('k', 'v', 60_000);
  for (let i = 0; i < 4; i++) {
    s.clock.advance(1000);
    await s.snapshot.execute();
  }
  t.deepEqual(
    s.store.snapshots.map((x) => x.info.id),
    ['snap-3', 'snap-4'],
  );
});

test('a snapshot that fails half-way commits nothing and says so', async (t) => {
  const s = makeSut();
  s.source.put('k', 'v', 60_000);
  s.source.entries = async function* () {
    await Promise.resolve();
    yield [{ key: 'k', payload: Buffer.from('v'), ttlMs: 1000 }];
    throw new Error('READONLY connection lost');
  };
  const result = await s.snapshot.execute();
  t.is(result.outcome, 'failed');
  t.is(s.store.snapshots.length, 0);
  t.like(s.events(EventName.snapshotFailed)[0], { outcome: 'failed', reason: 'READONLY connection lost' });
});

test('a cancelled snapshot commits nothing', async (t) => {
  const s = makeSut();
  for (let i = 0; i < 10; i++) s.source.put(`k${i}`, 'v', 60_000);
  const cancel = { aborted: false };
  const result = await s.snapshot.execute({ cancel, onProgress: () => (cancel.aborted = true) });
  t.is(result.outcome, 'failed');
  t.is(s.store.snapshots.length, 0);
});

test('a corrupt newest snapshot is refused (event "corrupt"), the next older one restored', async (t) => {
  const s = makeSut();
  for (let i = 0; i < 9; i++) s.source.put(`k${i}`, `old${i}`, 60_000);
  await s.snapshot.execute();
  s.clock.advance(1000);
  for (let i = 0; i < 9; i++) s.source.put(`k${i}`, `new${i}`, 60_000);
  await s.snapshot.execute();
  s.store.snapshots[1]!.corruptAfter = 1;

  const rejected: string[] = [];
  const restored = await s.restore.execute({ onRejected: (r) => rejected.push(`${r.snapshotId}:${r.reason}`) });
  t.is(restored.outcome, 'ok');
  if (restored.outcome !== 'ok') return;
  t.is(restored.snapshotId, 'snap-1');
  t.deepEqual(rejected, ['snap-2:corrupt']);
  t.is(restored.rejected[0]?.restoredBeforeRejection, 3, 'the verified first batch of the corrupt one stays');
  t.is(s.target.value('k0'), 'new0', 'newer entries from the verified part are not replaced by older ones');
  t.is(s.target.value('k8'), 'old8');
  const outcomes = s.events(EventName.restoreCompleted).map((e) => e.outcome);
  t.deepEqual(outcomes, ['corrupt', 'ok']);
  t.regex(s.events(EventName.restoreCompleted)[0]!.reason ?? '', /corrupt: block 2: checksum mismatch/);
});

test('every snapshot refused: the restore fails cleanly, the cache is left as it is', async (t) => {
  const s = makeSut();
  s.source.put('k', 'v', 60_000);
  await s.snapshot.execute();
  s.store.snapshots[0]!.corruptAfter = 0;
  const restored = await s.restore.execute();
  t.is(restored.outcome, 'failed');
  t.is(restored.rejected.length, 1);
  t.true(await s.target.isEmpty());
});

test('a snapshot in another entry format is refused as incompatible without being opened', async (t) => {
  const s = makeSut();
  s.source.put('k', 'v', 60_000);
  await s.snapshot.execute();
  const other = new FakeDump(s.clock, 'fmt-2');
  const restore = new RestoreSnapshot(other, s.store, s.bus, s.clock);
  const result = await restore.execute();
  t.is(result.outcome, 'failed');
  t.is(result.rejected[0]?.reason, 'incompatible');
});

test('no snapshot: skipped; store unreachable: failed; cache unreachable: failed without trying older ones', async (t) => {
  const s = makeSut();
  t.like(await s.restore.execute(), { outcome: 'skipped', reason: 'no snapshot' });

  s.store.listFails = true;
  t.like(await s.restore.execute(), { outcome: 'failed' });
  s.store.listFails = false;

  s.source.put('k', 'v', 60_000);
  await s.snapshot.execute();
  s.clock.advance(1);
  await s.snapshot.execute();
  s.target.failWrites = true;
  const result = await s.restore.execute();
  t.is(result.outcome, 'failed');
  t.regex(result.outcome === 'failed' ? result.reason : '', /cache write failed: cache down/);
  t.is(result.rejected.length, 0);
  t.deepEqual(
    s.events(EventName.restoreCompleted).map((e) => e.outcome),
    ['skipped', 'failed', 'failed'],
  );
});
