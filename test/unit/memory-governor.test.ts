/**
 * The in-memory upstream governor on a FakeClock: concurrency, points per minute, write spacing, the
 * FIFO wait and its bound, holds, slot leases, and the events the metrics are fed with.
 */
import test from 'ava';
import { MemoryGovernor } from '../../src/adapters/governor/memory-governor.adapter.js';
import { governedCall, type Admission } from '../../src/domain/ports/governor.port.js';
import { EventName, type GovernorDecidedEvent, type GovernorQueueEvent } from '../../src/domain/events/events.js';
import { FakeClock, RecordingBus } from '../support/fakes.js';

const LIMITS = { enabled: true, maxConcurrent: 50, pointsPerMinute: 800, writeSpacingMs: 1000, maxWaitMs: 10_000 };

function makeGovernor(limits: Partial<typeof LIMITS> & { slotTtlMs?: number; maxCredentials?: number } = {}) {
  const clock = new FakeClock();
  const events = new RecordingBus();
  const governor = new MemoryGovernor({ ...LIMITS, ...limits, clock, events });
  return { clock, events, governor };
}

/** Starts `acquire` and records when (clock time) and how it was answered. */
function track(governor: MemoryGovernor, clock: FakeClock, method = 'GET', partition = 'p1') {
  const state: { admission?: Admission; at?: number } = {};
  const promise = governor.acquire(governedCall(partition, method)).then((admission) => {
    state.admission = admission;
    state.at = clock.now();
    return admission;
  });
  return { state, promise };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

const release = (admission: Admission | undefined, sent = true) => {
  if (admission?.kind !== 'admitted') throw new Error(`not admitted: ${admission?.kind}`);
  admission.permit.release(sent);
};

test('GitHub points: 1 for GET, HEAD and OPTIONS, 5 for the other methods; writes are the others', (t) => {
  t.deepEqual(governedCall('p', 'GET'), { partition: 'p', points: 1, write: false });
  t.deepEqual(governedCall('p', 'head'), { partition: 'p', points: 1, write: false });
  t.deepEqual(governedCall('p', 'OPTIONS'), { partition: 'p', points: 1, write: false });
  for (const method of ['POST', 'PATCH', 'PUT', 'DELETE']) t.deepEqual(governedCall('p', method), { partition: 'p', points: 5, write: true });
});

test('at most maxConcurrent in flight per credential; the others wait first come, first served', async (t) => {
  const { clock, governor } = makeGovernor({ maxConcurrent: 2 });
  const calls = Array.from({ length: 5 }, () => track(governor, clock));
  const other = track(governor, clock, 'GET', 'p2');
  await settle();
  t.deepEqual(
    calls.map((c) => c.state.admission?.kind),
    ['admitted', 'admitted', undefined, undefined, undefined],
  );
  t.is(other.state.admission?.kind, 'admitted', 'another credential has its own budget');
  t.is(governor.queueDepth, 3);
  release(calls[1]?.state.admission);
  await settle();
  t.deepEqual(
    calls.map((c) => c.state.admission?.kind),
    ['admitted', 'admitted', 'admitted', undefined, undefined],
    'a released slot goes to the oldest waiter, at once (no clock tick)',
  );
  release(calls[0]?.state.admission);
  release(calls[2]?.state.admission);
  await settle();
  t.deepEqual(
    calls.map((c) => c.state.admission?.kind),
    ['admitted', 'admitted', 'admitted', 'admitted', 'admitted'],
  );
  t.is(governor.queueDepth, 0);
  t.is(governor.store.inFlight('p1'), 2);
});

test('at most pointsPerMinute in any minute: the next call waits until the oldest points leave the window', async (t) => {
  const { clock, governor } = makeGovernor({ pointsPerMinute: 10, writeSpacingMs: 0, maxWaitMs: 120_000 });
  const start = clock.now();
  for (let i = 0; i < 10; i++) {
    const { promise } = track(governor, clock);
    release(await promise);
    clock.advance(100);
  }
  const late = track(governor, clock);
  await clock.run(59_000, 1000);
  t.is(late.state.admission, undefined, 'still within the minute of the first 10 points');
  await clock.run(3_000, 100);
  t.is(late.state.admission?.kind, 'admitted');
  t.true((late.state.at ?? 0) - start >= 60_000, `admitted ${(late.state.at ?? 0) - start} ms after the first`);

  // a write costs 5: two fill a budget of 10
  const { clock: c2, governor: g2 } = makeGovernor({ pointsPerMinute: 10, writeSpacingMs: 0, maxWaitMs: 0 });
  release(await track(g2, c2, 'POST').promise);
  release(await track(g2, c2, 'PATCH').promise);
  t.is((await track(g2, c2, 'GET').promise).kind, 'refused');
});

test('writes are spaced writeSpacingMs apart; reads do not queue behind a waiting write', async (t) => {
  const { clock, governor } = makeGovernor({ writeSpacingMs: 1000 });
  const start = clock.now();
  const writes = Array.from({ length: 3 }, () => track(governor, clock, 'POST'));
  await settle();
  const read = track(governor, clock, 'GET');
  await settle();
  t.is(read.state.admission?.kind, 'admitted', 'the read went while writes wait');
  await clock.run(2500, 50);
  const times = writes.map((w) => (w.state.at ?? Number.NaN) - start);
  t.deepEqual(
    writes.map((w) => w.state.admission?.kind),
    ['admitted', 'admitted', 'admitted'],
  );
  t.is(times[0], 0);
  t.true((times[1] ?? 0) - (times[0] ?? 0) >= 1000, times.join(','));
  t.true((times[2] ?? 0) - (times[1] ?? 0) >= 1000, times.join(','));
  t.true((times[2] ?? 0) <= 2100, 'and no later than needed');
});

test('a call that waited maxWaitMs is refused with a Retry-After hint; the events tell the wait, the refusal and the queue', async (t) => {
  const { clock, governor, events } = makeGovernor({ maxConcurrent: 1, maxWaitMs: 2000 });
  const busy = await track(governor, clock).promise;
  const waiting = track(governor, clock);
  const behind = track(governor, clock);
  await clock.run(1900, 100);
  t.is(waiting.state.admission, undefined);
  await clock.run(200, 100);
  const refused = waiting.state.admission;
  t.is(refused?.kind, 'refused');
  t.true(refused?.kind === 'refused' && refused.retryAfterMs > 0 && refused.waitedMs >= 2000);
  t.is(behind.state.admission?.kind, 'refused');
  release(busy);
  const decided = events.named(EventName.governorDecided) as GovernorDecidedEvent[];
  t.deepEqual(
    decided.map((e) => e.result),
    ['admitted', 'refused', 'refused'],
  );
  t.true((decided[1]?.waitedMs ?? 0) >= 2000);
  const depths = (events.named(EventName.governorQueue) as GovernorQueueEvent[]).map((e) => e.depth);
  t.is(Math.max(...depths), 2);
  t.is(depths.at(-1), 0);
  t.is((await track(governor, clock).promise).kind, 'admitted', 'the budget is free again');
});

test('a hold answers every call of that credential "held" with the time left, waiting ones included; then it lapses', async (t) => {
  const { clock, governor, events } = makeGovernor({ maxConcurrent: 1 });
  const busy = await track(governor, clock).promise;
  const waiting = track(governor, clock);
  await settle();
  await governor.hold('p1', 30_000);
  release(busy);
  await settle();
  t.is(waiting.state.admission?.kind, 'held');
  clock.advance(10_000);
  const later = await track(governor, clock).promise;
  t.deepEqual(later, { kind: 'held', retryAfterMs: 20_000 });
  t.is((await track(governor, clock, 'GET', 'p2').promise).kind, 'admitted', 'other credentials go on');
  await governor.hold('p1', 1000);
  t.is((await track(governor, clock).promise).kind, 'held', 'a shorter hold never shortens a longer one');
  clock.advance(20_000);
  t.is((await track(governor, clock).promise).kind, 'admitted');
  t.true(events.named(EventName.governorHold).length >= 2);
});

test('a slot never given back lapses after slotTtlMs (a lost permit never blocks for good)', async (t) => {
  const { clock, governor } = makeGovernor({ maxConcurrent: 1, slotTtlMs: 5000, maxWaitMs: 10_000 });
  await track(governor, clock).promise; // never released
  const waiting = track(governor, clock);
  await clock.run(4900, 100);
  t.is(waiting.state.admission, undefined);
  await clock.run(300, 100);
  t.is(waiting.state.admission?.kind, 'admitted');
});

test('disabled: no limits, but holds still apply', async (t) => {
  const { clock, governor } = makeGovernor({ enabled: false, maxConcurrent: 1, pointsPerMinute: 1, writeSpacingMs: 60_000, maxWaitMs: 0 });
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => track(governor, clock, i % 2 === 0 ? 'GET' : 'POST').promise));
  t.true(answers.every((a) => a.kind === 'admitted'));
  await governor.hold('p1', 1000);
  t.is((await track(governor, clock).promise).kind, 'held');
});

test('counters are bounded: at most maxCredentials ledgers, idle ones dropped first', async (t) => {
  const { clock, governor } = makeGovernor({ maxCredentials: 3, maxConcurrent: 1, maxWaitMs: 0 });
  const keep = await track(governor, clock, 'GET', 'busy').promise;
  for (let i = 0; i < 10; i++) release(await track(governor, clock, 'GET', `p${i}`).promise);
  const ledgers = (governor.store as unknown as { ledgers: Map<string, unknown> }).ledgers;
  t.true(ledgers.size <= 3, String(ledgers.size));
  t.is(governor.store.inFlight('busy'), 1, 'the credential with a call in flight is kept');
  release(keep);
});

test('close answers the calls still waiting and lets later ones through', async (t) => {
  const { clock, governor } = makeGovernor({ maxConcurrent: 1 });
  await track(governor, clock).promise;
  const waiting = track(governor, clock);
  await settle();
  await governor.close();
  await settle();
  t.is(waiting.state.admission?.kind, 'refused');
  t.is((await track(governor, clock).promise).kind, 'admitted');
});

test('admitNow answers at once within budget and when held, never ahead of a waiting call', async (t) => {
  const { clock, governor, events } = makeGovernor({ maxConcurrent: 2 });
  const first = governor.admitNow(governedCall('p1', 'GET'));
  t.is(first?.kind, 'admitted', 'within budget: admitted without a promise');
  t.is(governor.store.inFlight('p1'), 1, 'the slot is taken as acquire takes it');
  t.is(events.named(EventName.governorDecided).length, 1, 'the decision is told as for acquire');
  const second = governor.admitNow(governedCall('p1', 'GET'));
  t.is(second?.kind, 'admitted');
  t.is(governor.admitNow(governedCall('p1', 'GET')), undefined, 'over budget: acquire decides (and queues)');
  const waiting = track(governor, clock);
  await settle();
  t.is(governor.queueDepth, 1);
  release(second);
  t.is(governor.admitNow(governedCall('p1', 'GET')), undefined, 'a call waits for this credential: the slot is its');
  await settle();
  t.is(waiting.state.admission?.kind, 'admitted');
  t.is(governor.admitNow(governedCall('p2', 'GET'))?.kind, 'admitted', 'other credentials are not behind it');
  await governor.hold('p3', 5000);
  t.deepEqual(governor.admitNow(governedCall('p3', 'GET')), { kind: 'held', retryAfterMs: 5000 });
  release(first);
  release(waiting.state.admission);
  t.is(governor.store.inFlight('p1'), 0, 'permits from admitNow are given back like any');
  await governor.close();
  t.is(governor.admitNow(governedCall('p1', 'GET'))?.kind, 'admitted', 'closed: lets calls through, as acquire does');
});
