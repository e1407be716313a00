/**
 * The governor's counters in this process: per credential partition, the slots in flight (each with a
 * lease, so a permit never released frees itself), the points of the last 61 one-second buckets, the
 * time of the last write, and holds. Used alone with the memory cache backend, and as the fallback of
 * the Redis store while Redis is unreachable. Bounded: at most `maxCredentials` ledgers and holds.
 */
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { GovernedCall } from '../../domain/ports/governor.port.js';
import { WINDOW_BUCKETS, enforcedSpacingMs, type GovernorLimits, type GovernorStore, type SlotRef, type TryResult } from './governor-store.js';

export interface MemoryGovernorStoreOptions {
  limits: GovernorLimits;
  clock: ClockPort;
  /** Most credentials with counters, and most held at once; the oldest go first beyond it (default 10 000). */
  maxCredentials?: number;
  /** A slot not released after this long is freed anyway (default 60 s). */
  slotTtlMs?: number;
}

interface Ledger {
  /** Slot id → lease expiry (epoch ms). */
  slots: Map<string, number>;
  /** Epoch second → points spent in it; insertion order is time order. */
  buckets: Map<number, number>;
  /** Sum of `buckets`. */
  points: number;
  lastWriteAt: number;
}

export class MemoryGovernorStore implements GovernorStore {
  /** Partition → epoch ms until which it is held. Insertion order = age. */
  readonly holds = new Map<string, number>();
  private readonly ledgers = new Map<string, Ledger>();
  private readonly limits: GovernorLimits;
  private readonly clock: ClockPort;
  private readonly maxCredentials: number;
  private readonly slotTtlMs: number;

  constructor(options: MemoryGovernorStoreOptions) {
    this.limits = options.limits;
    this.clock = options.clock;
    this.maxCredentials = options.maxCredentials ?? 10_000;
    this.slotTtlMs = options.slotTtlMs ?? 60_000;
  }

  /** Credentials held now. */
  get heldCount(): number {
    const now = this.clock.now();
    for (const [partition, until] of this.holds) if (until <= now) this.holds.delete(partition);
    return this.holds.size;
  }

  /** Slots in flight for a partition now (tests, readiness). */
  inFlight(partition: string): number {
    const ledger = this.ledgers.get(partition);
    if (ledger === undefined) return 0;
    this.prune(ledger, this.clock.now());
    return ledger.slots.size;
  }

  tryAcquire(call: GovernedCall, slotId: string): Promise<TryResult> {
    return Promise.resolve(this.tryAcquireNow(call, slotId));
  }

  /** Everything is here: always decided at once. */
  tryAcquireLocal(call: GovernedCall, slotId: string): TryResult {
    return this.tryAcquireNow(call, slotId);
  }

  release(slot: SlotRef, sent: boolean): void {
    this.releaseNow(slot, sent);
  }

  hold(partition: string, ms: number): Promise<void> {
    this.holdNow(partition, ms);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.ledgers.clear();
    this.holds.clear();
    return Promise.resolve();
  }

  /** Time left on a hold of `partition`, 0 when it is not held. */
  heldForMs(partition: string): number {
    const until = this.holds.get(partition);
    if (until === undefined) return 0;
    const left = until - this.clock.now();
    if (left <= 0) this.holds.delete(partition);
    return Math.max(0, left);
  }

  tryAcquireNow(call: GovernedCall, slotId: string): TryResult {
    const held = this.heldForMs(call.partition);
    if (held > 0) return { kind: 'held', retryAfterMs: held };
    if (!this.limits.enabled) return { kind: 'admitted', slot: undefined };
    const now = this.clock.now();
    const ledger = this.ledgerOf(call.partition);
    this.prune(ledger, now);
    if (ledger.slots.size >= this.limits.maxConcurrent) return { kind: 'busy', reason: 'concurrency' };
    const spacing = enforcedSpacingMs(this.limits.writeSpacingMs);
    if (call.write && spacing > 0 && now < ledger.lastWriteAt + spacing) {
      return { kind: 'busy', reason: 'spacing', retryAfterMs: ledger.lastWriteAt + spacing - now };
    }
    // a call dearer than the whole budget still goes, alone in an empty window
    if (ledger.points > 0 && ledger.points + call.points > this.limits.pointsPerMinute) {
      return { kind: 'busy', reason: 'points', retryAfterMs: this.pointsFreeInMs(ledger, call.points, now) };
    }
    const bucket = Math.floor(now / 1000);
    ledger.buckets.set(bucket, (ledger.buckets.get(bucket) ?? 0) + call.points);
    ledger.points += call.points;
    ledger.slots.set(slotId, now + this.slotTtlMs);
    if (call.write) ledger.lastWriteAt = now;
    return { kind: 'admitted', slot: { store: this, partition: call.partition, slotId, bucket, points: call.points } };
  }

  releaseNow(slot: SlotRef, sent: boolean): void {
    const ledger = this.ledgers.get(slot.partition);
    if (ledger === undefined) return;
    ledger.slots.delete(slot.slotId);
    if (sent) return;
    const spent = ledger.buckets.get(slot.bucket);
    if (spent === undefined) return;
    const given = Math.min(spent, slot.points);
    ledger.points -= given;
    if (spent - given <= 0) ledger.buckets.delete(slot.bucket);
    else ledger.buckets.set(slot.bucket, spent - given);
  }

  holdNow(partition: string, ms: number): void {
    if (!(ms > 0)) return;
    const now = this.clock.now();
    const until = now + ms;
    const current = this.holds.get(partition);
    this.holds.delete(partition);
    this.holds.set(partition, current !== undefined && current > until ? current : until);
    if (this.holds.size > this.maxCredentials) {
      for (const [id, end] of this.holds) if (end <= now) this.holds.delete(id);
    }
    while (this.holds.size > this.maxCredentials) {
      const oldest = this.holds.keys().next().value;
      if (oldest === undefined) break;
      this.holds.delete(oldest);
    }
  }

  private ledgerOf(partition: string): Ledger {
    let ledger = this.ledgers.get(partition);
    if (ledger !== undefined) {
      // most recently used last, so the bound drops idle credentials first
      this.ledgers.delete(partition);
      this.ledgers.set(partition, ledger);
      return ledger;
    }
    ledger = { slots: new Map(), buckets: new Map(), points: 0, lastWriteAt: -Infinity };
    this.ledgers.set(partition, ledger);
    if (this.ledgers.size > this.maxCredentials) this.evict(partition);
    return ledger;
  }

  /** Drops lapsed slot leases and buckets that left the window. */
  private prune(ledger: Ledger, now: number): void {
    for (const [id, expiry] of ledger.slots) if (expiry <= now) ledger.slots.delete(id);
    const oldest = Math.floor(now / 1000) - (WINDOW_BUCKETS - 1);
    for (const [second, points] of ledger.buckets) {
      if (second >= oldest) break;
      ledger.buckets.delete(second);
      ledger.points -= points;
    }
  }

  /** Time until enough buckets leave the window for `cost` more points. */
  private pointsFreeInMs(ledger: Ledger, cost: number, now: number): number {
    let excess = ledger.points + cost - this.limits.pointsPerMinute;
    for (const [second, points] of ledger.buckets) {
      excess -= points;
      if (excess <= 0) return Math.max(1, (second + WINDOW_BUCKETS) * 1000 - now);
    }
    return WINDOW_BUCKETS * 1000;
  }

  /**
   * Makes room, never dropping `keep`: idle credentials first, then those with no call in flight (their
   * points are forgotten), then the least recently used.
   */
  private evict(keep: string): void {
    const now = this.clock.now();
    const idle = (ledger: Ledger): boolean => ledger.points === 0 && now >= ledger.lastWriteAt + enforcedSpacingMs(this.limits.writeSpacingMs);
    for (const droppable of [(l: Ledger) => l.slots.size === 0 && idle(l), (l: Ledger) => l.slots.size === 0, () => true]) {
      for (const [partition, ledger] of this.ledgers) {
        if (this.ledgers.size <= this.maxCredentials) return;
        if (partition === keep) continue;
        this.prune(ledger, now);
        if (droppable(ledger)) this.ledgers.delete(partition);
      }
    }
  }
}
