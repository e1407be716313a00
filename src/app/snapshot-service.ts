/**
 * The snapshot schedule (DESIGN §1, issue 4): a timer around the snapshot use cases. The decisions
 * are theirs (src/domain/use-cases/snapshot-per-interval.ts: one snapshot per interval;
 * restore-when-lost.ts: the cache lost its data → lease → restore → mark); this class only says when:
 *
 * - every snapshot.intervalSeconds (±5 % jitter, so replicas drift apart) a tick: a shared cache that
 *   lost its data is restored, otherwise a snapshot is tried;
 * - at start, a restore before the mirror reports ready (/readyz shows its progress);
 * - when the shared cache is reachable again (primaryBack), a restore at once if it came back empty;
 * - on a graceful stop the memory backend takes a final snapshot (its cache dies with the process);
 *   with Redis a snapshot in progress is abandoned (nothing is committed) and Redis keeps the cache.
 *
 * It logs nothing itself: what happens is a snapshot.* event (src/adapters/logging/snapshot-log.subscriber.ts).
 * Its timers go through the ClockPort.
 */
import type { CacheDumpPort } from '../domain/ports/cache-dump.port.js';
import type { LeasePort } from '../domain/ports/lease.port.js';
import type { SnapshotStorePort } from '../domain/ports/snapshot-store.port.js';
import type { EventBusPort } from '../domain/ports/event-bus.port.js';
import type { Cancel, ClockPort } from '../domain/ports/clock.port.js';
import { EventName } from '../domain/events/events.js';
import type { TakeSnapshotResult } from '../domain/use-cases/take-snapshot.js';
import type { RestoreProgress, RestoreSnapshotResult } from '../domain/use-cases/restore-snapshot.js';
import { SnapshotPerInterval } from '../domain/use-cases/snapshot-per-interval.js';
import { RestoreWhenLost } from '../domain/use-cases/restore-when-lost.js';

/** Injection token of the SnapshotService (registered only when snapshot.store is not none). */
export const SNAPSHOT_SERVICE = Symbol('SnapshotService');

export interface SnapshotServiceOptions {
  intervalMs: number;
  retain: number;
  /** Restore at start when the cache lost its data (default true). */
  restoreOnStart?: boolean;
  /** Take a snapshot in stop() (the memory backend: its cache goes with the process). */
  snapshotOnStop: boolean;
  /** Lease held by the replica that restores, renewed every third of it (default 30 s). */
  restoreLeaseMs?: number;
  /** Fraction of the interval each wait varies by (default 0.05). */
  jitter?: number;
  /** stop() waits this long for a snapshot or restore in progress to notice it should end (default 30 s). */
  stopWaitMs?: number;
}

export interface SnapshotServiceDeps {
  dump: CacheDumpPort;
  store: SnapshotStorePort;
  lease: LeasePort;
  events: EventBusPort;
  clock: ClockPort;
  /** Runs before the first use (connect the dedicated Redis client); a failure is an event, not thrown. */
  open?: () => Promise<void>;
  /** Runs at the end of stop() (close clients). */
  close?: () => Promise<void>;
}

export interface SnapshotReadiness {
  /** false while the restore at start runs: this replica would otherwise answer with misses. */
  ready: boolean;
  store: string;
  backend: string;
  restoring: boolean;
  restore?: RestoreProgress;
  lastSnapshot?: { id: string; ageSeconds: number; entries: number; bytes: number };
}

/** primaryBack(): how often and how many times to ask the cache whether it lost its data, while it reconnects. */
const RECONNECT_PROBE_MS = 200;
const RECONNECT_PROBES = 50;

export class SnapshotService {
  private readonly perInterval: SnapshotPerInterval;
  private readonly restoreWhenLost: RestoreWhenLost;
  /** Aborted by stop(): a restore in progress ends (what it restored stays). */
  private readonly restoreAbort = new AbortController();
  /** Aborted by stop() unless the final snapshot is wanted: a snapshot in progress commits nothing. */
  private readonly snapshotAbort = new AbortController();
  /** A restore was cut short: the cache holds part of a snapshot, which must not become the newest one. */
  private restoreCutShort = false;
  private cancelTick: Cancel | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private opened: Promise<void> | undefined;
  private restoringAtStart = false;
  private restoring = false;
  private restoreProgress: RestoreProgress | undefined;
  private last: { id: string; takenAt: number; entries: number; bytes: number } | undefined;

  constructor(
    private readonly deps: SnapshotServiceDeps,
    private readonly options: SnapshotServiceOptions,
  ) {
    if (!(options.intervalMs > 0)) throw new RangeError('SnapshotService: intervalMs must be positive');
    const { dump, store, lease, events, clock } = deps;
    this.perInterval = new SnapshotPerInterval(dump, store, lease, events, clock, { intervalMs: options.intervalMs, retain: options.retain });
    this.restoreWhenLost = new RestoreWhenLost(dump, store, lease, events, clock, options.restoreLeaseMs === undefined ? {} : { leaseMs: options.restoreLeaseMs });
  }

  get store(): SnapshotStorePort {
    return this.deps.store;
  }

  get dump(): CacheDumpPort {
    return this.deps.dump;
  }

  private get restoreEnabled(): boolean {
    return this.options.restoreOnStart ?? true;
  }

  /** Restores (when the cache lost its data and restoreOnStart), then starts the schedule. Never throws. */
  async start(): Promise<void> {
    await this.open();
    if (this.restoreEnabled) {
      this.restoringAtStart = true;
      try {
        await this.exclusive(() => this.restore('start'));
      } finally {
        this.restoringAtStart = false;
      }
    }
    this.schedule();
  }

  /** Graceful stop: no more ticks; the memory backend takes its final snapshot; clients closed. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.cancelTick?.();
    this.restoreAbort.abort();
    if (!this.options.snapshotOnStop) this.snapshotAbort.abort();
    const { events, store } = this.deps;
    const settled = await this.settleWithin(this.options.stopWaitMs ?? 30_000);
    if (!settled) {
      events.emit({ name: EventName.snapshotStopIncomplete, store: store.name, cause: 'still_running' });
    } else if (this.options.snapshotOnStop && this.restoreCutShort) {
      events.emit({ name: EventName.snapshotStopIncomplete, store: store.name, cause: 'restore_cut_short' });
    } else if (this.options.snapshotOnStop) {
      // a failure is a snapshot.failed event with trigger "shutdown"
      await this.exclusive(() => this.snapshot('shutdown'));
    }
    try {
      await this.deps.close?.();
    } catch (error) {
      events.emit({ name: EventName.snapshotConnectionFailed, store: store.name, phase: 'close', error });
    }
  }

  /** Takes a snapshot now if this replica gets the interval's lease (operators, tests). */
  snapshotNow(): Promise<TakeSnapshotResult | undefined> {
    return this.exclusive(() => this.snapshot('manual'));
  }

  /** Restores now if the cache lost its data and no other replica is restoring. */
  restoreNow(): Promise<RestoreSnapshotResult | undefined> {
    return this.exclusive(() => this.restore('manual'));
  }

  /**
   * The shared cache is reachable again (the cache breaker closed): if it came back without its data
   * (a restart without persistence, a failover to an empty node), restore it now rather than at the
   * next interval, before misses refill it at the cost of one quota unit per resource per client.
   */
  async primaryBack(): Promise<RestoreSnapshotResult | undefined> {
    if (!this.deps.lease.shared || this.stopping || !this.restoreEnabled) return undefined;
    await this.open();
    // the snapshot service's own connection reconnects on its own schedule: wait (bounded) until it
    // can tell whether the cache lost its data, instead of giving up on the first refused command
    for (let attempt = 0; attempt < RECONNECT_PROBES && !this.stopping; attempt++) {
      try {
        await this.deps.dump.isMarkedRestored();
        break;
      } catch {
        await new Promise<void>((resolve) => this.after(RECONNECT_PROBE_MS, resolve));
      }
    }
    return this.exclusive(() => this.restore('reconnect'));
  }

  readiness(): SnapshotReadiness {
    const report: SnapshotReadiness = {
      ready: !this.restoringAtStart,
      store: this.deps.store.name,
      backend: this.deps.dump.backend,
      restoring: this.restoring,
    };
    if (this.restoreProgress !== undefined) report.restore = { ...this.restoreProgress };
    if (this.last !== undefined) {
      report.lastSnapshot = {
        id: this.last.id,
        ageSeconds: Math.round((this.deps.clock.now() - this.last.takenAt) / 1000),
        entries: this.last.entries,
        bytes: this.last.bytes,
      };
    }
    return report;
  }

  private open(): Promise<void> {
    this.opened ??= (async () => {
      try {
        await this.deps.open?.();
      } catch (error) {
        this.deps.events.emit({ name: EventName.snapshotConnectionFailed, store: this.deps.store.name, phase: 'open', error });
      }
    })();
    return this.opened;
  }

  /** One snapshot or restore at a time in this process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.work.catch(() => undefined).then(fn);
    this.work = run;
    return run;
  }

  /** Runs `task` once after `ms` (through the clock, which never keeps the process alive for it). */
  private after(ms: number, task: () => void): Cancel {
    const cancel = this.deps.clock.every(ms, () => {
      cancel();
      task();
    });
    return cancel;
  }

  /** True when the work in progress ended within `ms`. */
  private async settleWithin(ms: number): Promise<boolean> {
    let cancel: Cancel | undefined;
    const timeout = new Promise<false>((resolve) => {
      cancel = this.after(ms, () => resolve(false));
    });
    try {
      return await Promise.race([this.work.then(() => true, () => true), timeout]);
    } finally {
      cancel?.();
    }
  }

  private schedule(): void {
    if (this.stopping) return;
    const jitter = this.options.jitter ?? 0.05;
    const delay = Math.max(1, Math.round(this.options.intervalMs * (1 + (Math.random() * 2 - 1) * jitter)));
    this.cancelTick = this.after(delay, () => void this.tick());
  }

  private async tick(): Promise<void> {
    try {
      await this.exclusive(async () => {
        if (this.stopping) return;
        if (this.restoreEnabled && (await this.restoreWhenLost.sharedCacheLostData())) {
          await this.restore('interval');
          return;
        }
        await this.snapshot('interval');
      });
    } catch (error) {
      this.deps.events.emit({ name: EventName.snapshotScheduleFailed, error });
    } finally {
      this.schedule();
    }
  }

  private async snapshot(trigger: string): Promise<TakeSnapshotResult | undefined> {
    const result = await this.perInterval.execute({ trigger, cancel: this.snapshotAbort.signal });
    if (result?.outcome === 'ok') this.last = { id: result.info.id, takenAt: result.info.takenAt, entries: result.info.entries, bytes: result.info.bytes };
    return result;
  }

  private async restore(trigger: string): Promise<RestoreSnapshotResult | undefined> {
    try {
      const result = await this.restoreWhenLost.execute({
        trigger,
        cancel: this.restoreAbort.signal,
        onRestoring: () => {
          this.restoring = true;
          this.restoreProgress = undefined;
        },
        onProgress: (progress) => {
          this.restoreProgress = { ...progress };
        },
      });
      if (result?.outcome === 'failed' && this.restoreAbort.signal.aborted) this.restoreCutShort = true;
      return result;
    } finally {
      this.restoring = false;
    }
  }
}
