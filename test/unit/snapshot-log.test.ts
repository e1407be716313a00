/**
 * The snapshot log lines come from the snapshot.* events: the use cases run on fakes with the real
 * bus and the logging subscriber, and the lines operators grep for (docs/snapshots.md) come out with
 * their level, message and fields.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import { EventEmitter2Bus } from '../../src/adapters/events/eventemitter2-bus.adapter.js';
import { subscribeSnapshotLogs } from '../../src/adapters/logging/snapshot-log.subscriber.js';
import { createLogger } from '../../src/app/logger.js';
import { SnapshotPerInterval } from '../../src/domain/use-cases/snapshot-per-interval.js';
import { RestoreWhenLost } from '../../src/domain/use-cases/restore-when-lost.js';
import { LocalLease } from '../../src/adapters/lease/local-lease.adapter.js';
import { EventName } from '../../src/domain/events/events.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import { FakeClock } from '../support/fakes.js';
import { FakeDump, FakeStore, SharedFakeLease } from './snapshot-fakes.js';

const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

function makeSut() {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  const bus = new EventEmitter2Bus((error) => {
    throw error;
  });
  const unsubscribe = subscribeSnapshotLogs(bus, createLogger('debug', stream));
  const clock = new FakeClock();
  const lines = (): Array<Record<string, unknown>> => raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    bus,
    clock,
    unsubscribe,
    lines,
    line: (msg: string | RegExp) => lines().find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg)))),
    perInterval: (dump: FakeDump, store: FakeStore, lease: LeasePort) => new SnapshotPerInterval(dump, store, lease, bus, clock, { intervalMs: 60_000, retain: 5 }),
    restore: (dump: FakeDump, store: FakeStore, lease: LeasePort = new LocalLease(clock)) => new RestoreWhenLost(dump, store, lease, bus, clock),
  };
}

test('a snapshot per interval: "snapshot taken" with its fields, another replica’s skip at debug level, an empty cache skipped', async (t) => {
  const s = makeSut();
  const store = new FakeStore();
  const dump = new FakeDump(s.clock);
  dump.put('k', 'v', 600_000);
  const lease = new SharedFakeLease(s.clock, 'a');
  const result = await s.perInterval(dump, store, lease).execute({ trigger: 'interval' });
  t.is(result?.outcome, 'ok');
  t.like(s.line('snapshot taken'), { level: LEVEL.info, trigger: 'interval', store: 'fake', snapshotId: 'snap-1', entries: 1, bytes: 100, durationMs: 0, removed: [] });
  await s.perInterval(dump, store, lease.as('b')).execute({ trigger: 'interval' });
  t.like(s.line('snapshot skipped: another replica holds this interval’s lease'), { level: LEVEL.debug, trigger: 'interval' });
  await s.perInterval(new FakeDump(s.clock), store, new LocalLease(s.clock)).execute({ trigger: 'manual' });
  t.like(s.line('snapshot skipped'), { level: LEVEL.info, trigger: 'manual', store: 'fake', reason: 'cache is empty' });
});

test('a failed final snapshot: "snapshot failed: <reason>" then "final snapshot at shutdown failed"', async (t) => {
  const s = makeSut();
  const dump = new FakeDump(s.clock);
  dump.put('k', 'v', 600_000);
  dump.entries = async function* () {
    await Promise.resolve();
    yield [];
    throw new Error('disk full');
  };
  await s.perInterval(dump, new FakeStore(), new LocalLease(s.clock)).execute({ trigger: 'shutdown' });
  const errors = s.lines().filter((l) => l.level === LEVEL.error);
  t.deepEqual(
    errors.map((l) => l.msg),
    ['snapshot failed: disk full', 'final snapshot at shutdown failed'],
  );
  t.like(errors[0], { trigger: 'shutdown', store: 'fake', reason: 'disk full', err: { message: 'disk full' } });
});

test('a fresh install (empty cache, no snapshot) says "cache is empty", never that it lost its data; entries without the mark do', async (t) => {
  const s = makeSut();
  await s.restore(new FakeDump(s.clock), new FakeStore()).execute({ trigger: 'start' });
  t.like(s.line('cache is empty: restoring the newest snapshot'), { level: LEVEL.info, trigger: 'start', cause: 'empty' });
  t.like(s.line('restore skipped: no snapshot'), { level: LEVEL.info, reason: 'no snapshot' });
  t.is(s.line(/lost its data/), undefined);

  const unmarked = new FakeDump(s.clock);
  unmarked.put('written-since', 'v', 600_000);
  await s.restore(unmarked, new FakeStore()).execute({ trigger: 'reconnect' });
  t.like(s.line('cache lost its data (the restored mark is gone): restoring the newest snapshot'), { level: LEVEL.info, trigger: 'reconnect', cause: 'unmarked' });
});

test('a restore past a corrupt snapshot: start, rejection (error, with why), "snapshot restored" with the count refused', async (t) => {
  const s = makeSut();
  const store = new FakeStore();
  const source = new FakeDump(s.clock);
  for (let i = 0; i < 6; i++) source.put(`k${i}`, 'v', 600_000);
  const take = s.perInterval(source, store, new LocalLease(s.clock));
  await take.execute({ trigger: 'manual' });
  s.clock.advance(1000);
  await take.execute({ trigger: 'manual' });
  store.snapshots[1]!.corruptAfter = 1;

  const result = await s.restore(new FakeDump(s.clock), store).execute({ trigger: 'start' });
  t.is(result?.outcome, 'ok');
  t.like(s.line('cache is empty: restoring the newest snapshot'), { level: LEVEL.info, trigger: 'start', store: 'fake', backend: 'fake', cause: 'empty' });
  t.like(s.line('snapshot snap-2 rejected (corrupt): block 2: checksum mismatch; trying the next older one'), {
    level: LEVEL.error,
    store: 'fake',
    snapshotId: 'snap-2',
    reason: 'corrupt',
    restoredBeforeRejection: 3,
  });
  t.like(s.line('snapshot restored'), { level: LEVEL.info, store: 'fake', snapshotId: 'snap-1', restored: 3, present: 3, expired: 0, entries: 6, rejected: 1 });
});

test('restores that do not happen or fail say why, once each; "cache holds its data" only outside the interval', async (t) => {
  const s = makeSut();
  const empty = new FakeStore();
  await s.restore(new FakeDump(s.clock), empty).execute({ trigger: 'start' });
  t.like(s.line('restore skipped: no snapshot'), { level: LEVEL.info, store: 'fake', reason: 'no snapshot' });

  const down = new FakeStore();
  down.listFails = true;
  await s.restore(new FakeDump(s.clock), down).execute({ trigger: 'start' });
  t.like(s.line(/^restore failed: cannot list snapshots: store unreachable; starting with the cache as it is$/), { level: LEVEL.error, store: 'fake', rejected: 0 });

  const marked = new FakeDump(s.clock);
  marked.put('k', 'v', 600_000);
  marked.marked = true;
  await s.restore(marked, empty).execute({ trigger: 'interval' });
  t.is(s.line('cache holds its data: no restore'), undefined);
  await s.restore(marked, empty).execute({ trigger: 'reconnect' });
  t.like(s.line('cache holds its data: no restore'), { level: LEVEL.info, trigger: 'reconnect', backend: 'fake' });

  const lease = new SharedFakeLease(s.clock, 'other');
  await lease.acquire('restore', 30_000);
  await s.restore(new FakeDump(s.clock), empty, lease.as('me')).execute({ trigger: 'start' });
  t.like(s.line('restore skipped: another replica is restoring the shared cache'), { level: LEVEL.info, trigger: 'start' });

  const unreachable = new FakeDump(s.clock);
  unreachable.isMarkedRestored = () => Promise.reject(new Error('ECONNREFUSED'));
  await s.restore(unreachable, empty).execute({ trigger: 'start' });
  t.like(s.line('restore skipped: cannot tell whether the cache lost its data (cache unreachable)'), { level: LEVEL.warn, trigger: 'start', err: { message: 'ECONNREFUSED' } });

  const failing = new FakeDump(s.clock);
  failing.failWrites = true;
  await s.restore(failing, empty).execute({ trigger: 'start' });
  t.like(s.line('the restored mark could not be written; the next check restores again'), { level: LEVEL.warn, err: { message: 'cache down' } });
  t.is(s.lines().filter((l) => l.level === LEVEL.error).length, 1, 'one error line: the store that did not answer');
});

test('lease trouble while working and the service’s own events become warnings; unsubscribed, nothing more is written', (t) => {
  const s = makeSut();
  s.bus.emit({ name: EventName.snapshotLeaseLost, lease: 'restore', cause: 'expired' });
  s.bus.emit({ name: EventName.snapshotLeaseLost, lease: 'snapshot', cause: 'unreachable', error: new Error('timeout') });
  s.bus.emit({ name: EventName.snapshotStopIncomplete, store: 'file', cause: 'still_running' });
  s.bus.emit({ name: EventName.snapshotConnectionFailed, store: 'file', phase: 'open', error: new Error('ECONNREFUSED') });
  t.like(s.line('lease lost while working (expired or taken over)'), { level: LEVEL.warn, lease: 'restore' });
  t.like(s.line('lease renewal failed'), { level: LEVEL.warn, lease: 'snapshot', err: { message: 'timeout' } });
  t.like(s.line('stop: a snapshot or restore still runs (store or cache not answering); not waiting for it'), { level: LEVEL.warn, store: 'file' });
  t.like(s.line('snapshot: cache connection not ready at start; retrying in the background'), { level: LEVEL.warn, store: 'file' });
  const written = s.lines().length;
  s.unsubscribe();
  s.bus.emit({ name: EventName.snapshotScheduleFailed, error: new Error('late') });
  t.is(s.lines().length, written);
});
