/**
 * Restore when the cache lost its data. "Lost" means empty, or without the mark a settled restore
 * leaves in the cache: a Redis that restarted empty while replicas kept writing misses into it is
 * restored too, not only one found exactly empty. The replica that takes the restore lease checks
 * again under it (another may have just finished), restores the newest usable snapshot, and leaves
 * the mark once the restore has settled: restored, no snapshot at all, or every snapshot refused
 * (trying again would meet the same files). Not when the store or the cache did not answer, or the
 * restore was cut short: the next check tries again.
 */
import type { CacheDumpPort } from '../ports/cache-dump.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import type { LeasePort } from '../ports/lease.port.js';
import type { SnapshotStorePort } from '../ports/snapshot-store.port.js';
import { EventName, type RestoreStartedEvent, type SnapshotSkipCause } from '../events/events.js';
import { RestoreSnapshot, type RestoreProgress, type RestoreSnapshotResult } from './restore-snapshot.js';
import type { CancelSignal } from './take-snapshot.js';
import { underLease, type LeasedWorkPorts } from './under-lease.js';

/** The lease of the replica that restores a shared cache (the operator CLI takes it too). */
export const RESTORE_LEASE = 'restore';

export interface RestoreWhenLostOptions {
  /** How long the restore lease is taken for, renewed every third of it (default 30 s). */
  leaseMs?: number;
}

export interface RestoreWhenLostRequest {
  /** What asked ("start", "interval", "reconnect", "manual"): carried in the events. */
  trigger: string;
  /** Aborted: a restore in progress ends (what it restored stays; no mark). */
  cancel?: CancelSignal;
  /** This replica holds the restore lease: from here until execute() settles it is restoring. */
  onRestoring?: () => void;
  onProgress?: (progress: RestoreProgress) => void;
}

export class RestoreWhenLost {
  private readonly restoreSnapshot: RestoreSnapshot;
  private readonly ports: LeasedWorkPorts;
  private readonly leaseMs: number;

  constructor(
    private readonly dump: CacheDumpPort,
    private readonly store: SnapshotStorePort,
    lease: LeasePort,
    private readonly events: EventBusPort,
    clock: ClockPort,
    options: RestoreWhenLostOptions = {},
  ) {
    this.restoreSnapshot = new RestoreSnapshot(dump, store, events, clock);
    this.ports = { lease, clock, events };
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  /** Empty, or without the mark of a settled restore: the cache lost its data since. Rejects when it does not answer. */
  async lostData(): Promise<boolean> {
    return (await this.loss()) !== undefined;
  }

  /** Why the cache needs a restore: it is empty (a fresh install too), or holds entries but lost the mark; undefined = it holds its data. */
  private async loss(): Promise<RestoreStartedEvent['cause'] | undefined> {
    if (!(await this.dump.isMarkedRestored())) return (await this.dump.isEmpty()) ? 'empty' : 'unmarked';
    return (await this.dump.isEmpty()) ? 'empty' : undefined;
  }

  /**
   * Whether an interval should restore instead of snapshot: a shared cache that lost its data
   * (flushed, failed over to an empty node). False when the cache does not answer: the snapshot
   * attempt that follows reports it.
   */
  async sharedCacheLostData(): Promise<boolean> {
    if (!this.ports.lease.shared) return false;
    return this.lostData().catch(() => false);
  }

  /** The restore's result, or undefined when there was nothing to do or another replica does it. */
  async execute(request: RestoreWhenLostRequest): Promise<RestoreSnapshotResult | undefined> {
    const { trigger } = request;
    let lost: boolean;
    try {
      lost = await this.lostData();
    } catch (error) {
      return this.skipped(trigger, 'cache_unreachable', error);
    }
    if (!lost) return this.skipped(trigger, 'holds_data');
    return underLease(this.ports, { work: 'restore', trigger, lease: RESTORE_LEASE, ttlMs: this.leaseMs }, () => this.restoreUnderLease(request));
  }

  private async restoreUnderLease(request: RestoreWhenLostRequest): Promise<RestoreSnapshotResult | undefined> {
    const { trigger } = request;
    request.onRestoring?.();
    try {
      // another replica may have finished a restore between the check and this lease
      const cause = await this.loss();
      if (cause === undefined) return this.skipped(trigger, 'restored_elsewhere');
      this.events.emit({ name: EventName.restoreStarted, trigger, store: this.store.name, backend: this.dump.backend, cause });
      const result = await this.restoreSnapshot.execute({ cancel: request.cancel, onProgress: request.onProgress });
      // settled (restored, nothing to restore, every snapshot refused): leave the mark, so this data
      // is not restored again until it is lost again; otherwise the next check tries again
      if (result.outcome !== 'failed' || result.exhausted) {
        await this.dump.markRestored().catch((error: unknown) => this.events.emit({ name: EventName.restoreMarkFailed, error }));
      }
      return result;
    } catch (error) {
      return this.skipped(trigger, 'cache_unreachable', error);
    }
  }

  private skipped(trigger: string, cause: SnapshotSkipCause, error?: unknown): undefined {
    this.events.emit({
      name: EventName.snapshotWorkSkipped,
      work: 'restore',
      trigger,
      cause,
      ...(cause === 'holds_data' ? { backend: this.dump.backend } : {}),
      ...(error === undefined ? {} : { error }),
    });
    return undefined;
  }
}
