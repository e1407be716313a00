/**
 * GovernorPort over a GovernorStore: the waiting part. A call that finds nobody of its credential
 * waiting asks the store at once (calls within budget never wait on each other's round trips). A call
 * told "busy", and every call after it, queues first come, first served — in two lanes per credential,
 * reads and writes, so a write waiting out its spacing does not stall the reads. Only the head of a
 * lane asks the store; it retries when the store says a retry may succeed, when a slot of that
 * credential is released in this process, or every `pollMs` (a slot freed on another replica tells
 * nobody). A call still waiting after `maxWaitMs` is refused.
 */
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { Admission, GovernedCall, GovernorPermit, GovernorPort } from '../../domain/ports/governor.port.js';
import { EventName } from '../../domain/events/events.js';
import type { GovernorStore, SlotRef, TryResult } from './governor-store.js';

export interface QueuedGovernorOptions {
  /** Longest a call waits for its turn before it is refused (0 = refuse at once when over budget). */
  maxWaitMs: number;
  /** Retry period when the store cannot tell when a retry may succeed (default 25 ms). */
  pollMs?: number;
  /** Longest single sleep of a lane's head between two attempts (default 1000 ms). */
  maxSleepMs?: number;
  events?: EventBusPort;
  /** Prefix of slot ids (default: random); unique per process so that replicas never share one. */
  slotPrefix?: string;
}

interface Waiter {
  call: GovernedCall;
  enqueuedAt: number;
  deadline: number;
  resolve: (admission: Admission) => void;
}

interface Lane {
  waiters: Waiter[];
  pumping: boolean;
  /** Bumped by every local release for the lane's credential: a release during an attempt is not missed. */
  releases: number;
  wake: (() => void) | undefined;
  /** The store's last "retry in" for the head, for the Retry-After of a refusal. */
  hintMs: number | undefined;
}

const NO_PERMIT: GovernorPermit = { release: () => undefined };
const IGNORE = (): void => undefined;

export class QueuedGovernor implements GovernorPort {
  private readonly lanes = new Map<string, Lane>();
  private readonly pollMs: number;
  private readonly maxSleepMs: number;
  private readonly slotPrefix: string;
  private depth = 0;
  private counter = 0;
  private closed = false;

  constructor(
    private readonly counters: GovernorStore,
    private readonly clock: ClockPort,
    private readonly options: QueuedGovernorOptions,
  ) {
    this.pollMs = Math.max(1, options.pollMs ?? 25);
    this.maxSleepMs = Math.max(this.pollMs, options.maxSleepMs ?? 1000);
    this.slotPrefix = options.slotPrefix ?? Math.random().toString(36).slice(2, 10);
  }

  /** Calls waiting in this process (all credentials). */
  get queueDepth(): number {
    return this.depth;
  }

  /**
   * Admitted or held at once when the store can decide in this process and nobody of the credential
   * waits; undefined otherwise (acquire then asks again, and queues the call if it is over budget).
   */
  admitNow(call: GovernedCall): Admission | undefined {
    if (this.closed) return { kind: 'admitted', permit: NO_PERMIT, waitedMs: 0 };
    const counters = this.counters;
    if (counters.tryAcquireLocal === undefined || (this.lanes.size > 0 && this.lanes.has(laneKey(call.partition, call.write)))) return undefined;
    let result: TryResult | undefined;
    try {
      result = counters.tryAcquireLocal(call, this.nextSlotId());
    } catch {
      return undefined;
    }
    if (result === undefined || result.kind === 'busy') return undefined;
    return this.answered(call, result, 0);
  }

  async acquire(call: GovernedCall): Promise<Admission> {
    if (this.closed) return { kind: 'admitted', permit: NO_PERMIT, waitedMs: 0 };
    const key = laneKey(call.partition, call.write);
    const started = this.clock.now();
    if (!this.lanes.has(key)) {
      // nobody of this credential waits: ask at once (calls that fit the budget never queue behind
      // each other's round trips); only a call told "busy" takes its place in the line
      const result = await this.attempt(call);
      if (result.kind !== 'busy') return this.answered(call, result, this.clock.now() - started);
      return this.enqueue(key, call, started, result.retryAfterMs ?? this.pollMs);
    }
    return this.enqueue(key, call, started, undefined);
  }

  /** A call that did not queue, admitted or held: the permit, the events, the answer. */
  private answered(call: GovernedCall, result: Exclude<TryResult, { kind: 'busy' }>, waitedMs: number): Admission {
    if (result.kind === 'admitted') return this.decided(call, { kind: 'admitted', permit: this.permitFor(result.slot), waitedMs }, 0, result.leased);
    this.options.events?.emit({ name: EventName.governorHold, partition: call.partition, holdMs: result.retryAfterMs, source: 'store' });
    return this.decided(call, { kind: 'held', retryAfterMs: result.retryAfterMs });
  }

  private enqueue(key: string, call: GovernedCall, started: number, hintMs: number | undefined): Promise<Admission> {
    return new Promise<Admission>((resolve) => {
      let lane = this.lanes.get(key);
      if (lane === undefined) {
        lane = { waiters: [], pumping: false, releases: 0, wake: undefined, hintMs };
        this.lanes.set(key, lane);
      }
      lane.waiters.push({ call, enqueuedAt: started, deadline: started + this.options.maxWaitMs, resolve });
      this.changeDepth(1);
      if (!lane.pumping) void this.pump(key, lane);
    });
  }

  hold(partition: string, ms: number): Promise<void> {
    if (!(ms > 0)) return Promise.resolve();
    this.options.events?.emit({ name: EventName.governorHold, partition, holdMs: ms, source: 'answer' });
    return this.counters.hold(partition, ms).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      for (const waiter of lane.waiters.splice(0)) this.settle(waiter, { kind: 'refused', retryAfterMs: 1000, waitedMs: this.clock.now() - waiter.enqueuedAt });
      lane.wake?.();
    }
    this.lanes.clear();
    await this.counters.close();
  }

  private async pump(key: string, lane: Lane): Promise<void> {
    lane.pumping = true;
    try {
      while (lane.waiters.length > 0 && !this.closed) {
        const head = lane.waiters[0] as Waiter;
        const now = this.clock.now();
        if (now >= head.deadline && lane.hintMs !== undefined) {
          lane.waiters.shift();
          this.settle(head, { kind: 'refused', retryAfterMs: lane.hintMs, waitedMs: now - head.enqueuedAt });
          continue;
        }
        const releases = lane.releases;
        const result = await this.attempt(head.call);
        if (result.kind === 'admitted') {
          lane.waiters.shift();
          lane.hintMs = undefined;
          this.settle(head, { kind: 'admitted', permit: this.permitFor(result.slot), waitedMs: this.clock.now() - head.enqueuedAt }, result.leased);
          continue;
        }
        if (result.kind === 'held') {
          lane.hintMs = undefined;
          this.options.events?.emit({ name: EventName.governorHold, partition: head.call.partition, holdMs: result.retryAfterMs, source: 'store' });
          for (const waiter of lane.waiters.splice(0)) this.settle(waiter, { kind: 'held', retryAfterMs: result.retryAfterMs });
          continue;
        }
        lane.hintMs = result.retryAfterMs ?? this.pollMs;
        const left = head.deadline - this.clock.now();
        if (left <= 0) continue; // refused on the next turn, with the hint just learnt
        if (lane.releases !== releases) continue; // a slot came back while we asked: ask again now
        await this.sleep(lane, Math.max(1, Math.min(result.retryAfterMs ?? this.pollMs, left, this.maxSleepMs)));
      }
    } finally {
      lane.pumping = false;
      if (lane.waiters.length === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
    }
  }

  /** The store's answer; a store that fails lets the call go (the governor never blocks GitHub calls). */
  private async attempt(call: GovernedCall): Promise<TryResult> {
    try {
      return await this.counters.tryAcquire(call, this.nextSlotId());
    } catch {
      return { kind: 'admitted', slot: undefined };
    }
  }

  private nextSlotId(): string {
    return `${this.slotPrefix}:${++this.counter}`;
  }

  private permitFor(slot: SlotRef | undefined): GovernorPermit {
    if (slot === undefined) return NO_PERMIT;
    let released = false;
    return {
      release: (sent: boolean) => {
        if (released) return;
        released = true;
        try {
          const done = slot.store.release(slot, sent);
          if (done !== undefined) done.catch(IGNORE);
        } catch {
          // never rejects, never throws: a slot not given back lapses with its lease
        }
        this.released(slot.partition);
      },
    };
  }

  /** A slot of `partition` came back: the heads of its lanes try again at once. */
  private released(partition: string): void {
    if (this.lanes.size === 0) return;
    for (const write of [false, true]) {
      const lane = this.lanes.get(laneKey(partition, write));
      if (lane === undefined) continue;
      lane.releases++;
      lane.wake?.();
    }
  }

  /** Waits `ms`, or less when woken; the timer is a cancellable one, so none is left behind once woken or closed. */
  private sleep(lane: Lane, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        cancel();
        if (lane.wake === finish) lane.wake = undefined;
        resolve();
      };
      const cancel = this.clock.every(ms, finish);
      lane.wake = finish;
    });
  }

  private settle(waiter: Waiter, admission: Admission, leased?: boolean): void {
    this.changeDepth(-1);
    waiter.resolve(this.decided(waiter.call, admission, this.clock.now() - waiter.enqueuedAt, leased));
  }

  /** Tells the bus how a call was answered, and hands the answer back. */
  private decided(call: GovernedCall, admission: Admission, heldAfterMs = 0, leased?: boolean): Admission {
    const events = this.options.events;
    if (events === undefined) return admission;
    const waitedMs = admission.kind === 'held' ? heldAfterMs : admission.waitedMs;
    events.emit(
      leased === true
        ? { name: EventName.governorDecided, result: admission.kind, waitedMs, write: call.write, leased: true }
        : { name: EventName.governorDecided, result: admission.kind, waitedMs, write: call.write },
    );
    return admission;
  }

  private changeDepth(by: number): void {
    this.depth += by;
    this.options.events?.emit({ name: EventName.governorQueue, depth: this.depth });
  }
}

function laneKey(partition: string, write: boolean): string {
  return `${write ? 'w' : 'r'}|${partition}`;
}
