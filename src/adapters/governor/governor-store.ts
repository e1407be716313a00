/**
 * What the governor's queue needs from where the counters live (this process, or Redis for the
 * fleet): one atomic "may this call go now?" per attempt, the release of a slot, and holds.
 */
import type { GovernedCall } from '../../domain/ports/governor.port.js';

export interface GovernorLimits {
  /** Off: no concurrency, points or spacing limits (holds still apply). */
  enabled: boolean;
  /** Calls in flight per credential, fleet-wide. */
  maxConcurrent: number;
  /** Points per credential in any minute (GET/HEAD/OPTIONS 1, other methods 5). */
  pointsPerMinute: number;
  /** Least time between two writes of a credential (0 = no spacing). */
  writeSpacingMs: number;
}

/** A granted concurrency slot, to give back to the store that granted it. */
export interface SlotRef {
  readonly store: GovernorStore;
  readonly partition: string;
  readonly slotId: string;
  /** The points window bucket (epoch seconds) the call's points were added to. */
  readonly bucket: number;
  readonly points: number;
}

export type TryResult =
  /** `leased`: admitted from a lease this process holds, without asking where the counters live. */
  | { kind: 'admitted'; slot: SlotRef | undefined; leased?: boolean }
  | { kind: 'held'; retryAfterMs: number }
  /** Over budget now; `retryAfterMs` = when a retry may succeed, when the store can tell. */
  | { kind: 'busy'; reason: 'concurrency' | 'points' | 'spacing'; retryAfterMs?: number };

export interface GovernorStore {
  /** One atomic check-and-take for `call`; the slot (when admitted) is named `slotId`. Never rejects. */
  tryAcquire(call: GovernedCall, slotId: string): Promise<TryResult>;
  /**
   * The same check, when it can be decided in this process without I/O (the memory counters; a lease
   * of the Redis ones, a hold known here, Redis out of use); undefined = only `tryAcquire` can tell.
   * Optional; never throws.
   */
  tryAcquireLocal?(call: GovernedCall, slotId: string): TryResult | undefined;
  /** Frees a slot; `sent: false` gives its points back. Never rejects; nothing to wait for when done at once. */
  release(slot: SlotRef, sent: boolean): Promise<void> | void;
  /** Holds the credential for `ms` from now (a longer hold already there is kept). Never rejects. */
  hold(partition: string, ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Length of the points window: 61 one-second buckets, so any 60 s span lies inside one window. */
export const WINDOW_BUCKETS = 61;

/**
 * The spacing the counters enforce between two writes: writeSpacingMs plus a headroom of a tenth (at
 * most 50 ms), because GitHub measures the gap where the calls arrive, and two calls on their way can
 * get closer by the jitter of the path (event loop, connection pool, network).
 */
export function enforcedSpacingMs(writeSpacingMs: number): number {
  return writeSpacingMs <= 0 ? 0 : writeSpacingMs + Math.min(50, Math.ceil(writeSpacingMs / 10));
}

/**
 * The block a lease takes (Redis store, reads only): a few slots and tens of points, granted only
 * while the credential is far from its limits (see LEASE_SHARE), so a busy credential's reads are
 * admitted in this process without a round trip.
 */
export function leaseSize(limits: Pick<GovernorLimits, 'maxConcurrent' | 'pointsPerMinute'>): { slots: number; points: number } {
  return {
    slots: Math.min(4, Math.max(1, Math.floor(limits.maxConcurrent / 16))),
    points: Math.min(20, Math.max(1, Math.floor(limits.pointsPerMinute / 40))),
  };
}
