/**
 * One restore from the snapshot store into the cache (the newest usable snapshot, or a given one). No
 * lease, no "lost its data" check: restore-when-lost decides that; the operator CLI calls it directly.
 */
import type { CacheDumpPort, DumpedEntry } from '../ports/cache-dump.port.js';
import { isSnapshotRejected, SnapshotRejectedError, SnapshotRejection, type SnapshotInfo, type SnapshotReading, type SnapshotStorePort } from '../ports/snapshot-store.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import { EventName } from '../events/events.js';
import type { CancelSignal } from './take-snapshot.js';

export interface RestoreProgress {
  snapshotId: string;
  /** Entries in the snapshot (from its manifest). */
  total: number;
  /** Entries read so far. */
  entries: number;
  /** Entries written into the cache and still held (written minus those it dropped for room). */
  restored: number;
  /** Entries the cache dropped to make room while the restore ran (a memory cache smaller than the snapshot). */
  evicted: number;
  expired: number;
  present: number;
  /** Entry bytes read so far. */
  payloadBytes: number;
  durationMs: number;
}

export interface RestoreSnapshotRequest {
  /** A given snapshot instead of the newest usable one (operator CLI). */
  snapshotId?: string;
  cancel?: CancelSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Called when a snapshot is refused, before the next older one is tried. */
  onRejected?: (rejected: RejectedSnapshot) => void;
}

export interface RejectedSnapshot {
  snapshotId: string;
  /** A SnapshotRejection value, or "unreadable" when the store failed to deliver it. */
  reason: string;
  message: string;
  /** Entries restored from it before the problem was found (each was verified; they stay). */
  restoredBeforeRejection: number;
}

export type RestoreSnapshotResult =
  | ({ outcome: 'ok' } & RestoreProgress & { rejected: RejectedSnapshot[] })
  | { outcome: 'skipped'; reason: string; rejected: RejectedSnapshot[]; durationMs: number }
  | {
      outcome: 'failed';
      reason: string;
      error: unknown;
      rejected: RejectedSnapshot[];
      durationMs: number;
      /**
       * True when every snapshot there was got refused: trying again finds the same ones. False when
       * the store or the cache did not answer, or the restore was cancelled: a later try may succeed.
       */
      exhausted: boolean;
    };

export interface RestoreSnapshotOptions {
  /** Least time between two progress events (default 250 ms). */
  progressEveryMs?: number;
}

class RestoreCancelledError extends Error {
  constructor() {
    super('restore cancelled');
  }
}

/** The cache failed while entries were written back: no use trying another snapshot. */
class CacheWriteError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/**
 * Loads the newest usable snapshot into the cache: entries whose TTL ran out since the snapshot are
 * skipped, an entry the cache already holds is never replaced. A corrupt, truncated, wrong-version
 * or incompatible snapshot is refused (an event each) and the next older one is tried; entries
 * already restored from a refused snapshot stay, as each was verified before it was written.
 */
export class RestoreSnapshot {
  private readonly progressEveryMs: number;

  constructor(
    private readonly dump: CacheDumpPort,
    private readonly store: SnapshotStorePort,
    private readonly events: EventBusPort,
    private readonly clock: ClockPort,
    options: RestoreSnapshotOptions = {},
  ) {
    this.progressEveryMs = options.progressEveryMs ?? 250;
  }

  async execute(request: RestoreSnapshotRequest = {}): Promise<RestoreSnapshotResult> {
    const started = this.clock.now();
    const store = this.store.name;
    const rejected: RejectedSnapshot[] = [];
    const elapsed = (): number => this.clock.now() - started;

    let candidates: SnapshotInfo[];
    try {
      candidates = await this.store.list();
    } catch (error) {
      const reason = `cannot list snapshots: ${messageOf(error)}`;
      this.events.emit({ name: EventName.restoreCompleted, store, entries: 0, bytes: 0, durationMs: elapsed(), outcome: 'failed', reason });
      return this.failed(store, { reason, error, rejected, durationMs: elapsed(), exhausted: false });
    }
    if (request.snapshotId !== undefined) {
      candidates = candidates.filter((c) => c.id === request.snapshotId);
      if (candidates.length === 0) {
        const reason = `no snapshot ${request.snapshotId}`;
        this.events.emit({ name: EventName.restoreCompleted, store, entries: 0, bytes: 0, durationMs: elapsed(), outcome: 'failed', reason });
        return this.failed(store, { reason, error: new Error(reason), rejected, durationMs: elapsed(), exhausted: false });
      }
    }
    if (candidates.length === 0) {
      const reason = 'no snapshot';
      this.events.emit({ name: EventName.restoreCompleted, store, entries: 0, bytes: 0, durationMs: elapsed(), outcome: 'skipped', reason });
      return { outcome: 'skipped', reason, rejected, durationMs: elapsed() };
    }

    for (const candidate of candidates) {
      if (request.cancel?.aborted) break;
      const progress: RestoreProgress = {
        snapshotId: candidate.id,
        total: candidate.entries,
        entries: 0,
        restored: 0,
        evicted: 0,
        expired: 0,
        present: 0,
        payloadBytes: 0,
        durationMs: 0,
      };
      try {
        await this.restoreOne(candidate, progress, started, request);
        progress.durationMs = elapsed();
        this.events.emit({
          name: EventName.restoreCompleted,
          store,
          entries: progress.entries,
          bytes: progress.payloadBytes,
          durationMs: progress.durationMs,
          outcome: 'ok',
          snapshotId: candidate.id,
          total: progress.total,
          restored: progress.restored,
          evicted: progress.evicted,
          expired: progress.expired,
          present: progress.present,
          rejected: rejected.length,
        });
        return { outcome: 'ok', ...progress, rejected };
      } catch (error) {
        if (error instanceof RestoreCancelledError) {
          this.emitEnd(store, progress, elapsed(), 'failed', 'cancelled');
          return this.failed(store, { reason: 'cancelled', error, rejected, durationMs: elapsed(), exhausted: false });
        }
        if (error instanceof CacheWriteError) {
          const reason = `cache write failed: ${error.message}`;
          this.emitEnd(store, progress, elapsed(), 'failed', reason);
          return this.failed(store, { reason, error: error.original, rejected, durationMs: elapsed(), exhausted: false });
        }
        const refusal: RejectedSnapshot = {
          snapshotId: candidate.id,
          reason: isSnapshotRejected(error) ? error.reason : 'unreadable',
          message: messageOf(error),
          restoredBeforeRejection: progress.restored,
        };
        rejected.push(refusal);
        this.emitEnd(store, progress, elapsed(), isSnapshotRejected(error) ? 'corrupt' : 'failed', `${refusal.reason}: ${refusal.message}`);
        this.events.emit({ name: EventName.snapshotRejected, store, ...refusal });
        request.onRejected?.(refusal);
      }
    }
    const cancelled = request.cancel?.aborted ?? false;
    const reason = cancelled ? 'cancelled' : `no usable snapshot (${rejected.length} refused)`;
    return this.failed(store, { reason, error: new Error(reason), rejected, durationMs: elapsed(), exhausted: !cancelled });
  }

  /** Every run that restores nothing ends here: one snapshot.restore_failed, whatever the cause. */
  private failed(store: string, result: Omit<Extract<RestoreSnapshotResult, { outcome: 'failed' }>, 'outcome'>): RestoreSnapshotResult {
    this.events.emit({ name: EventName.restoreFailed, store, reason: result.reason, rejected: result.rejected.length, durationMs: result.durationMs });
    return { outcome: 'failed', ...result };
  }

  private emitEnd(store: string, progress: RestoreProgress, durationMs: number, outcome: 'failed' | 'corrupt', reason: string): void {
    this.events.emit({
      name: EventName.restoreCompleted,
      store,
      entries: progress.entries,
      bytes: progress.payloadBytes,
      durationMs,
      outcome,
      reason,
      snapshotId: progress.snapshotId,
      total: progress.total,
      restored: progress.restored,
      evicted: progress.evicted,
      expired: progress.expired,
      present: progress.present,
    });
  }

  private async restoreOne(candidate: SnapshotInfo, progress: RestoreProgress, started: number, request: RestoreSnapshotRequest): Promise<void> {
    if (candidate.problem !== undefined) throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, candidate.problem);
    this.checkCompatible(candidate);
    const reading: SnapshotReading = await this.store.open(candidate.id);
    try {
      this.checkCompatible(reading.info);
      progress.total = reading.info.entries;
      const store = this.store.name;
      let lastProgressAt = Number.NEGATIVE_INFINITY;
      const evictionsAtStart = this.dump.evictions ?? 0;
      let written = 0;
      for await (const batch of reading.batches) {
        if (request.cancel?.aborted) throw new RestoreCancelledError();
        const now = this.clock.now();
        const age = now - reading.info.takenAt;
        const live: DumpedEntry[] = [];
        for (const entry of batch) {
          progress.entries += 1;
          progress.payloadBytes += entry.payload.byteLength;
          const ttlMs = entry.ttlMs - age;
          if (ttlMs <= 0) progress.expired += 1;
          else live.push({ key: entry.key, payload: entry.payload, ttlMs });
        }
        if (live.length > 0) {
          let count: number;
          try {
            count = await this.dump.restoreIfAbsent(live);
          } catch (error) {
            throw new CacheWriteError(error);
          }
          written += count;
          progress.present += live.length - count;
          progress.evicted = (this.dump.evictions ?? 0) - evictionsAtStart;
          progress.restored = Math.max(0, written - progress.evicted);
        }
        const after = this.clock.now();
        progress.durationMs = after - started;
        if (after - lastProgressAt >= this.progressEveryMs) {
          lastProgressAt = after;
          request.onProgress?.(progress);
          this.events.emit({
            name: EventName.restoreProgress,
            store,
            entries: progress.entries,
            bytes: progress.payloadBytes,
            durationMs: progress.durationMs,
            outcome: 'in_progress',
            snapshotId: progress.snapshotId,
            total: progress.total,
            restored: progress.restored,
            evicted: progress.evicted,
            expired: progress.expired,
            present: progress.present,
          });
        }
      }
      request.onProgress?.(progress);
    } finally {
      // closing only releases a stream; a failure there changes nothing about the restore
      await reading.close().catch(() => undefined);
    }
  }

  private checkCompatible(info: SnapshotInfo): void {
    if (info.entryFormat !== this.dump.entryFormat) {
      throw new SnapshotRejectedError(
        SnapshotRejection.INCOMPATIBLE,
        `entries are in format "${info.entryFormat}", this cache (${this.dump.backend}) reads "${this.dump.entryFormat}"`,
      );
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
