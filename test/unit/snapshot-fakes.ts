/**
 * Fakes of the snapshot ports for the unit tests: a cache dump over a Map with a fake clock, and a
 * snapshot store in memory that can be told to fail, to hold back, or to turn corrupt.
 */
import type { CacheDumpPort, DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';
import {
  SnapshotRejectedError,
  SnapshotRejection,
  type SnapshotInfo,
  type SnapshotMeta,
  type SnapshotReading,
  type SnapshotStorePort,
} from '../../src/domain/ports/snapshot-store.port.js';
import type { LeasePort } from '../../src/domain/ports/lease.port.js';
import type { FakeClock } from '../support/fakes.js';

export class FakeDump implements CacheDumpPort {
  readonly backend = 'fake';
  readonly items = new Map<string, { payload: Uint8Array; expiresAt: number }>();
  failWrites = false;
  constructor(
    private readonly clock: FakeClock,
    readonly entryFormat = 'fmt-1',
  ) {}
  put(key: string, payload: string, ttlMs: number): void {
    this.items.set(key, { payload: Buffer.from(payload), expiresAt: this.clock.now() + ttlMs });
  }
  value(key: string): string | undefined {
    const item = this.items.get(key);
    return item && item.expiresAt > this.clock.now() ? Buffer.from(item.payload).toString() : undefined;
  }
  ttlOf(key: string): number | undefined {
    const item = this.items.get(key);
    return item ? item.expiresAt - this.clock.now() : undefined;
  }
  isEmpty(): Promise<boolean> {
    return Promise.resolve(this.items.size === 0);
  }
  /** The mark markRestored leaves; a test clears it to play a cache that lost its data. */
  marked = false;
  isMarkedRestored(): Promise<boolean> {
    return Promise.resolve(this.marked);
  }
  markRestored(): Promise<void> {
    if (this.failWrites) return Promise.reject(new Error('cache down'));
    this.marked = true;
    return Promise.resolve();
  }
  async *entries(): AsyncGenerator<DumpedEntry[]> {
    const keys = [...this.items.keys()];
    for (let i = 0; i < keys.length; i += 3) {
      await Promise.resolve();
      const now = this.clock.now();
      yield keys.slice(i, i + 3).map((key) => ({ key, payload: this.items.get(key)!.payload, ttlMs: this.items.get(key)!.expiresAt - now }));
    }
  }
  restoreIfAbsent(entries: readonly DumpedEntry[]): Promise<number> {
    if (this.failWrites) return Promise.reject(new Error('cache down'));
    let written = 0;
    for (const e of entries) {
      if (this.value(e.key) !== undefined) continue;
      this.items.set(e.key, { payload: e.payload, expiresAt: this.clock.now() + e.ttlMs });
      written += 1;
    }
    return Promise.resolve(written);
  }
}

export interface Stored {
  info: SnapshotInfo;
  batches: DumpedEntry[][];
  /** Refuse after yielding this many batches. */
  corruptAfter?: number;
}

export class FakeStore implements SnapshotStorePort {
  readonly name = 'fake';
  readonly snapshots: Stored[] = [];
  private counter = 0;
  listFails = false;
  /** While set, reading a snapshot waits for it before each batch (a restore held in progress). */
  readGate: Promise<void> | undefined;
  list(): Promise<SnapshotInfo[]> {
    if (this.listFails) return Promise.reject(new Error('store unreachable'));
    return Promise.resolve([...this.snapshots].map((s) => s.info).sort((a, b) => b.takenAt - a.takenAt));
  }
  async save(meta: SnapshotMeta, batches: AsyncIterable<readonly DumpedEntry[]>): Promise<SnapshotInfo> {
    const kept: DumpedEntry[][] = [];
    for await (const batch of batches) kept.push(batch.map((e) => ({ ...e })));
    this.counter += 1;
    const info: SnapshotInfo = { ...meta, id: `snap-${this.counter}`, entries: kept.flat().length, bytes: 100 * this.counter, formatVersion: 1 };
    this.snapshots.push({ info, batches: kept });
    return info;
  }
  open(id: string): Promise<SnapshotReading> {
    const stored = this.snapshots.find((s) => s.info.id === id);
    if (!stored) return Promise.reject(new Error('gone'));
    const gate = (): Promise<void> | undefined => this.readGate;
    async function* batches(): AsyncGenerator<DumpedEntry[]> {
      let n = 0;
      for (const batch of stored!.batches) {
        await gate();
        if (stored!.corruptAfter !== undefined && n >= stored!.corruptAfter) throw new SnapshotRejectedError(SnapshotRejection.CORRUPT, 'block 2: checksum mismatch');
        await Promise.resolve();
        n += 1;
        yield batch;
      }
      if (stored!.corruptAfter !== undefined && n >= stored!.corruptAfter) throw new SnapshotRejectedError(SnapshotRejection.TRUNCATED, 'truncated');
    }
    return Promise.resolve({ info: stored.info, batches: batches(), close: () => Promise.resolve() });
  }
  remove(id: string): Promise<void> {
    const i = this.snapshots.findIndex((s) => s.info.id === id);
    if (i >= 0) this.snapshots.splice(i, 1);
    return Promise.resolve();
  }
}


/** A lease every "replica" shares (as Redis would), on a fake clock. */
export class SharedFakeLease implements LeasePort {
  readonly shared = true;
  private readonly held = new Map<string, { owner: string; until: number }>();
  constructor(
    private readonly clock: FakeClock,
    private readonly owner: string,
    private readonly table?: SharedFakeLease,
  ) {}
  /** Another replica's view of the same leases. */
  as(owner: string): SharedFakeLease {
    return new SharedFakeLease(this.clock, owner, this.table ?? this);
  }
  private get map(): Map<string, { owner: string; until: number }> {
    return (this.table ?? this).held;
  }
  acquire(name: string, ttlMs: number): Promise<boolean> {
    const current = this.map.get(name);
    if (current && current.until > this.clock.now()) return Promise.resolve(false);
    this.map.set(name, { owner: this.owner, until: this.clock.now() + ttlMs });
    return Promise.resolve(true);
  }
  renew(name: string, ttlMs: number): Promise<boolean> {
    const current = this.map.get(name);
    if (!current || current.owner !== this.owner || current.until <= this.clock.now()) return Promise.resolve(false);
    current.until = this.clock.now() + ttlMs;
    return Promise.resolve(true);
  }
  release(name: string): Promise<void> {
    if (this.map.get(name)?.owner === this.owner) this.map.delete(name);
    return Promise.resolve();
  }
}
