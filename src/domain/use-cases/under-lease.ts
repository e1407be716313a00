/**
 * Takes a snapshot lease and runs work under it with holdLease: the one sequence "acquire, or say why
 * not; renew while working; release (or keep)" that snapshot-per-interval and restore-when-lost
 * share. Every way the lease gets in the work's way becomes an event, never an exception.
 */
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import type { LeasePort } from '../ports/lease.port.js';
import { EventName } from '../events/events.js';
import { holdLease } from './hold-lease.js';

export interface LeasedWorkPorts {
  lease: LeasePort;
  clock: ClockPort;
  events: EventBusPort;
}

export interface LeasedWork<T> {
  /** What runs under the lease (named in the events). */
  work: 'snapshot' | 'restore';
  trigger: string;
  /** The lease's name and how long it is taken for (renewed every third of it). */
  lease: string;
  ttlMs: number;
  /** Whether to give the lease up once the work is done (default: always). */
  release?: (result: T | undefined, failed: boolean) => boolean;
}

/**
 * Runs `run` when this replica takes the lease; undefined (and a snapshot.work_skipped event) when
 * another replica holds it or the lease cannot be taken.
 */
export async function underLease<T>(ports: LeasedWorkPorts, spec: LeasedWork<T>, run: () => Promise<T>): Promise<T | undefined> {
  const { lease, clock, events } = ports;
  const skipped = { name: EventName.snapshotWorkSkipped, work: spec.work, trigger: spec.trigger } as const;
  let held: boolean;
  try {
    held = await lease.acquire(spec.lease, spec.ttlMs);
  } catch (error) {
    events.emit({ ...skipped, cause: 'lease_unreachable', error });
    return undefined;
  }
  if (!held) {
    events.emit({ ...skipped, cause: 'lease_held' });
    return undefined;
  }
  return holdLease(lease, clock, spec.lease, spec.ttlMs, run, {
    ...(spec.release === undefined ? {} : { release: spec.release }),
    onLost: () => events.emit({ name: EventName.snapshotLeaseLost, lease: spec.lease, cause: 'expired' }),
    onRenewFailed: (error) => events.emit({ name: EventName.snapshotLeaseLost, lease: spec.lease, cause: 'unreachable', error }),
  });
}
