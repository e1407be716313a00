/**
 * The upstream governor's metrics (issue 15), fed by its events: time calls waited for their turn,
 * calls waiting now, calls refused, credentials held now and the longest of those holds so far (the
 * alert on a credential held for more than 10 minutes). No label names a credential.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { FastHistogram, type FastHistogramChild } from './fast-histogram.js';
import type { GovernorDecidedEvent, GovernorHoldEvent, GovernorQueueEvent } from '../../domain/events/events.js';

/** Buckets of `github_mirror_governor_wait_seconds`: most calls never wait; a wait is bounded by maxWaitMs (10 s by default). */
export const GOVERNOR_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A hold that starts less than this after the previous one of the same credential ended continues it
 * (GitHub refusing again at the first call after the wait is one long hold, not two short ones).
 */
const HOLD_GAP_MS = 60_000;

/** Most holds remembered for `github_mirror_governor_holds_active`. */
const MAX_HOLDS = 10_000;

export class GovernorMetrics {
  private readonly wait: FastHistogram<'result'>;
  /** The wait histogram's child per result (an observation per upstream call: no label hashing); refused and held appear once seen. */
  private readonly waitBy: Partial<Record<'admitted' | 'refused' | 'held', FastHistogramChild>>;
  private readonly refusals: Counter<'reason'>;
  private readonly leased: Counter;
  private readonly depth: Gauge;
  /** Partition → since when it is held without a break, and when its hold ends (epoch ms, this replica's view). */
  private readonly holds = new Map<string, { since: number; until: number }>();
  private readonly nowFn: () => number;

  constructor(registers: Registry[], now: () => number) {
    this.wait = new FastHistogram({
      name: 'github_mirror_governor_wait_seconds',
      help: 'Time an upstream call waited for its turn in the governor, by result (admitted, refused, held)',
      labelNames: ['result'],
      buckets: GOVERNOR_WAIT_BUCKETS,
      registers,
    });
    this.refusals = new Counter({
      name: 'github_mirror_governor_refusals_total',
      help: 'Upstream calls the governor did not send, by reason (wait_exceeded: waited maxWaitMs in vain; held: GitHub asked the credential to wait)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['wait_exceeded', 'held']) this.refusals.inc({ reason }, 0);
    this.leased = new Counter({
      name: 'github_mirror_governor_leased_total',
      help: 'Upstream calls admitted from a lease this replica held (Redis backend: no round trip to Redis for the turn); also counted in wait_seconds{result="admitted"}',
      registers,
    });
    this.depth = new Gauge({ name: 'github_mirror_governor_queue_depth', help: 'Upstream calls waiting for their turn in this replica’s governor', registers });
    const holds = this.holds;
    new Gauge({
      name: 'github_mirror_governor_holds_active',
      help: 'Credentials held now (GitHub asked them to wait), as this replica knows them',
      registers,
      collect() {
        const at = now();
        let active = 0;
        for (const [partition, hold] of holds) {
          if (hold.until > at) active++;
          else if (hold.until + HOLD_GAP_MS <= at) holds.delete(partition);
        }
        this.set(active);
      },
    });
    new Gauge({
      name: 'github_mirror_governor_hold_longest_seconds',
      help: 'How long the credential held the longest, among those held now, has been held without a break (0 when none), as this replica knows it',
      registers,
      collect() {
        const at = now();
        let longest = 0;
        for (const hold of holds.values()) if (hold.until > at) longest = Math.max(longest, at - hold.since);
        this.set(longest / 1000);
      },
    });
    // the two other metrics show up at 0 before the first call
    this.depth.set(0);
    this.waitBy = { admitted: this.wait.child({ result: 'admitted' }) };
    this.nowFn = now;
  }

  onDecided(e: GovernorDecidedEvent): void {
    const result = e.result === 'refused' || e.result === 'held' ? e.result : 'admitted';
    (this.waitBy[result] ??= this.wait.child({ result })).observe(Math.max(0, e.waitedMs) / 1000);
    if (e.leased === true) this.leased.inc();
    if (result === 'refused') this.refusals.inc({ reason: 'wait_exceeded' });
    else if (result === 'held') this.refusals.inc({ reason: 'held' });
  }

  onQueue(e: GovernorQueueEvent): void {
    this.depth.set(Math.max(0, e.depth));
  }

  onHold(e: GovernorHoldEvent): void {
    const at = this.nowFn();
    const until = at + Math.max(0, e.holdMs);
    const current = this.holds.get(e.partition);
    this.holds.delete(e.partition);
    // a hold that follows on from one still running (or just ended) continues it
    const continues = current !== undefined && current.until + HOLD_GAP_MS > at;
    this.holds.set(e.partition, {
      since: continues ? current.since : at,
      until: continues && current.until > until ? current.until : until,
    });
    while (this.holds.size > MAX_HOLDS) {
      const oldest = this.holds.keys().next().value;
      if (oldest === undefined) break;
      this.holds.delete(oldest);
    }
  }
}
