/**
 * One snapshot per interval: a replica snapshots the cache when it takes the interval's lease. With a
 * shared cache (Redis) the replicas share the lease, which is taken for 90 % of the interval and kept
 * after a good snapshot, so the others find it taken until the next interval; a failed snapshot gives
 * it back at once, so another replica can try at its next tick. With a cache of its own (memory) each
 * replica snapshots its own cache and the lease only keeps two runs in one process apart.
 */
import type { CacheDumpPort } from '../ports/cache-dump.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import type { LeasePort } from '../ports/lease.port.js';
import type { SnapshotStorePort } from '../ports/snapshot-store.port.js';
import { TakeSnapshot, type CancelSignal, type TakeSnapshotResult } from './take-snapshot.js';
import { underLease, type LeasedWorkPorts } from './under-lease.js';

/** The lease of the snapshot of this interval. */
export const SNAPSHOT_LEASE = 'snapshot';

export interface SnapshotPerIntervalOptions {
  intervalMs: number;
  /** Snapshots kept after a successful one. */
  retain: number;
}

export interface SnapshotPerIntervalRequest {
  /** What asked ("interval", "manual", "shutdown"): carried in the events. */
  trigger: string;
  /** Aborted: a snapshot in progress commits nothing. */
  cancel?: CancelSignal;
}

export class SnapshotPerInterval {
  private readonly takeSnapshot: TakeSnapshot;
  /** The lease outlives the snapshot on purpose: it is this interval's, so another replica waits for the next. */
  private readonly leaseMs: number;

  private readonly ports: LeasedWorkPorts;

  constructor(dump: CacheDumpPort, store: SnapshotStorePort, lease: LeasePort, events: EventBusPort, clock: ClockPort, options: SnapshotPerIntervalOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError('SnapshotPerInterval: intervalMs must be positive');
    this.takeSnapshot = new TakeSnapshot(dump, store, events, clock, { retain: options.retain });
    this.leaseMs = Math.max(1000, Math.floor(options.intervalMs * 0.9));
    this.ports = { lease, clock, events };
  }

  /** The snapshot's result, or undefined when another replica took this interval (or the lease did not answer). */
  execute(request: SnapshotPerIntervalRequest): Promise<TakeSnapshotResult | undefined> {
    const { trigger, cancel } = request;
    return underLease(
      this.ports,
      {
        work: 'snapshot',
        trigger,
        lease: SNAPSHOT_LEASE,
        ttlMs: this.leaseMs,
        release: (result, failed) => failed || result?.outcome !== 'ok' || !this.ports.lease.shared,
      },
      () => this.takeSnapshot.execute({ trigger, cancel }),
    );
  }
}
