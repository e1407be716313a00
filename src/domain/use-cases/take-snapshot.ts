/**
 * One snapshot of the whole cache into the snapshot store, then retention. No lease, no schedule:
 * snapshot-per-interval decides when and who; the operator CLI calls it directly.
 */
import type { CacheDumpPort, DumpedEntry } from '../ports/cache-dump.port.js';
import type { SnapshotInfo, SnapshotStorePort } from '../ports/snapshot-store.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import { EventName } from '../events/events.js';
import { ErrorCode } from '../errors.js';

export interface TakeSnapshotOptions {
  /** Snapshots kept after a successful one (older ones are removed). */
  retain: number;
}

/** Something that says when to stop (an AbortSignal fits). */
export interface CancelSignal {
  readonly aborted: boolean;
}

export interface SnapshotProgress {
  entries: number;
  /** Entry bytes read so far (before compression). */
  payloadBytes: number;
}

export interface TakeSnapshotRequest {
  /** What asked for it ("interval", "manual", "shutdown"...): carried in the events. */
  trigger?: string;
  /** Checked between batches: the snapshot is abandoned (nothing committed) once it is aborted. */
  cancel?: CancelSignal;
  onProgress?: (progress: SnapshotProgress) => void;
}

export type TakeSnapshotResult =
  | { outcome: 'ok'; info: SnapshotInfo; durationMs: number; payloadBytes: number; removed: string[]; removeErrors: Array<{ id: string; error: unknown }> }
  | { outcome: 'skipped'; reason: string; durationMs: number }
  | { outcome: 'failed'; reason: string; error: unknown; durationMs: number };

export class SnapshotCancelledError extends Error {
  override readonly name = 'SnapshotCancelledError';
  readonly code = ErrorCode.SNAPSHOT_CANCELLED;
  constructor() {
    super('snapshot cancelled');
  }
}

/**
 * Streams every live entry of the cache into the snapshot store as one new snapshot, then keeps the
 * newest `retain`. An empty cache is not snapshotted: an empty snapshot would push good ones out.
 */
export class TakeSnapshot {
  constructor(
    private readonly dump: CacheDumpPort,
    private readonly store: SnapshotStorePort,
    private readonly events: EventBusPort,
    private readonly clock: ClockPort,
    private readonly options: TakeSnapshotOptions,
  ) {
    if (!Number.isInteger(options.retain) || options.retain < 1) throw new RangeError('TakeSnapshot: retain must be an integer ≥ 1');
  }

  async execute(request: TakeSnapshotRequest = {}): Promise<TakeSnapshotResult> {
    const started = this.clock.now();
    const store = this.store.name;
    const trigger = request.trigger === undefined ? {} : { trigger: request.trigger };
    const elapsed = (): number => this.clock.now() - started;
    try {
      if (await this.dump.isEmpty()) {
        const reason = 'cache is empty';
        this.events.emit({ name: EventName.snapshotCompleted, store, entries: 0, bytes: 0, durationMs: elapsed(), outcome: 'skipped', reason, ...trigger });
        return { outcome: 'skipped', reason, durationMs: elapsed() };
      }
      const takenAt = this.clock.now();
      const progress: SnapshotProgress = { entries: 0, payloadBytes: 0 };
      const info = await this.store.save(
        { takenAt, backend: this.dump.backend, entryFormat: this.dump.entryFormat },
        this.relativeTo(takenAt, progress, request),
      );
      const durationMs = elapsed();
      // retention first, so the event says what it removed; it never throws (failures are listed)
      const { removed, removeErrors } = await this.prune(info.id);
      this.events.emit({
        name: EventName.snapshotCompleted,
        store,
        entries: info.entries,
        bytes: info.bytes,
        durationMs,
        outcome: 'ok',
        snapshotId: info.id,
        removed,
        ...trigger,
      });
      for (const failure of removeErrors) this.events.emit({ name: EventName.snapshotPruneFailed, store, snapshotId: failure.id, error: failure.error });
      return { outcome: 'ok', info, durationMs, payloadBytes: progress.payloadBytes, removed, removeErrors };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.events.emit({ name: EventName.snapshotFailed, store, entries: 0, bytes: 0, durationMs: elapsed(), outcome: 'failed', reason, error, ...trigger });
      return { outcome: 'failed', reason, error, durationMs: elapsed() };
    }
  }

  /** The dump's batches with each TTL made relative to takenAt; live entries only. */
  private async *relativeTo(takenAt: number, progress: SnapshotProgress, request: TakeSnapshotRequest): AsyncGenerator<readonly DumpedEntry[]> {
    for await (const batch of this.dump.entries()) {
      if (request.cancel?.aborted) throw new SnapshotCancelledError();
      // an entry read at `now` with ttlMs left expires at now + ttlMs, i.e. (now - takenAt) + ttlMs after takenAt
      const shift = this.clock.now() - takenAt;
      const out: DumpedEntry[] = [];
      for (const entry of batch) {
        if (entry.ttlMs <= 0) continue;
        out.push({ key: entry.key, payload: entry.payload, ttlMs: entry.ttlMs + shift });
        progress.payloadBytes += entry.payload.byteLength;
      }
      progress.entries += out.length;
      if (out.length > 0) yield out;
      request.onProgress?.(progress);
    }
    if (request.cancel?.aborted) throw new SnapshotCancelledError();
  }

  /** Keeps the newest `retain` snapshots (never the one just written). */
  private async prune(justWritten: string): Promise<{ removed: string[]; removeErrors: Array<{ id: string; error: unknown }> }> {
    const removed: string[] = [];
    const removeErrors: Array<{ id: string; error: unknown }> = [];
    let listed: SnapshotInfo[];
    try {
      listed = await this.store.list();
    } catch (error) {
      removeErrors.push({ id: '*', error });
      return { removed, removeErrors };
    }
    const sorted = [...listed].sort((a, b) => b.takenAt - a.takenAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const keep = new Set(sorted.slice(0, this.options.retain).map((s) => s.id));
    keep.add(justWritten);
    for (const snapshot of sorted) {
      if (keep.has(snapshot.id)) continue;
      try {
        await this.store.remove(snapshot.id);
        removed.push(snapshot.id);
      } catch (error) {
        removeErrors.push({ id: snapshot.id, error });
      }
    }
    return { removed, removeErrors };
  }
}
