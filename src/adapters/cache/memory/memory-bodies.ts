/**
 * The memory cache's shared bodies (docs/architecture.md, "Storage layout"): each body once per
 * resource, counted once in the byte budget, kept while an entry points at it; and each resource's
 * index of its most recently validated bodies. Bodies restored from a snapshot stay sealed until
 * first used; a restored body no entry points at (an orphan) goes first when memory runs short.
 */
import type { CachedEntry, StoredRepresentation } from '../../../domain/model.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import type { BodyKeys } from '../../crypto/body-keys.js';
import { ownedBytes } from './owned-bytes.js';
import { INDEX_MAX, readBody, representationOf, sharedName, storedRepresentation, withIndexRecord, writeBody, writeIndex, type IndexRecord } from '../shared-layout.js';

interface BodySlot {
  resourceKey: string;
  bodyId: string;
  /** The representation, once known (stored, or opened from `sealed`). */
  entry: CachedEntry | undefined;
  /** Restored from a snapshot and not opened yet. */
  sealed: Uint8Array | undefined;
  /** Entries pointing at it. */
  refs: number;
  size: number;
  expiresAt: number;
}

interface IndexSlot {
  records: IndexRecord[];
  expiresAt: number;
}

/**
 * What a held body costs besides its bytes and header strings, as measured with the memory cache
 * filled (docs/performance.md): the representation, its headers object, the Buffer and its backing
 * store's bookkeeping, the slot, its key and Map entry, and the slack the JS heap and malloc keep
 * around such objects — about 1 KiB, where 160 bytes was assumed before.
 */
const BODY_OVERHEAD_BYTES = 1024;
const INDEX_OVERHEAD_BYTES = 120;
const INDEX_RECORD_BYTES = 80;

/** The representation the cache keeps, its body in memory of its own size (ownedBytes). */
function ownedRepresentation(entry: CachedEntry): CachedEntry {
  const rep = representationOf(entry);
  rep.body = ownedBytes(rep.body);
  return rep;
}

function slotKey(resourceKey: string, bodyId: string): string {
  return `${resourceKey}\u0000${bodyId}`;
}

function bodySize(entry: CachedEntry | undefined, sealed: Uint8Array | undefined): number {
  let size = BODY_OVERHEAD_BYTES + (entry?.body.byteLength ?? sealed?.byteLength ?? 0);
  if (entry !== undefined) for (const name in entry.headers) size += (name.length + (entry.headers[name]?.length ?? 0)) * 2;
  return size;
}

export class MemoryBodies {
  private readonly bodies = new Map<string, BodySlot>();
  private readonly indexes = new Map<string, IndexSlot>();
  /** Restored bodies no entry points at yet. */
  private readonly orphans = new Set<string>();
  private used = 0;
  /** Restored bodies that did not open or did not match their id (dropped). */
  unreadable = 0;

  constructor(
    readonly keys: BodyKeys,
    private readonly clock: ClockPort,
  ) {}

  get bytes(): number {
    return this.used;
  }

  get count(): number {
    return this.bodies.size;
  }

  /** The headers a held body was stored with (undefined: not held, or still sealed). */
  headersOf(resourceKey: string, bodyId: string): Record<string, string> | undefined {
    return this.bodies.get(slotKey(resourceKey, bodyId))?.entry?.headers;
  }

  /** The bytes `entry`'s body would add if it is not held yet. */
  costOf(resourceKey: string, bodyId: string, entry: CachedEntry): number {
    return this.bodies.has(slotKey(resourceKey, bodyId)) ? 0 : bodySize(representationOf(entry), undefined);
  }

  /** One more entry points at this body; `entry` fills it when it is absent (or a placeholder). */
  acquire(resourceKey: string, bodyId: string, entry: CachedEntry | undefined, expiresAt: number): void {
    const key = slotKey(resourceKey, bodyId);
    let slot = this.bodies.get(key);
    if (slot === undefined) {
      const rep = entry === undefined ? undefined : ownedRepresentation(entry);
      slot = { resourceKey, bodyId, entry: rep, sealed: undefined, refs: 0, size: bodySize(rep, undefined), expiresAt };
      this.bodies.set(key, slot);
      this.used += slot.size;
    } else if (slot.entry === undefined && slot.sealed === undefined && entry !== undefined) {
      this.resize(slot, ownedRepresentation(entry), undefined);
    }
    this.orphans.delete(key);
    slot.refs += 1;
    slot.expiresAt = Math.max(slot.expiresAt, expiresAt);
  }

  /** One entry less points at this body: the last one takes it (and its index record) away. */
  release(resourceKey: string, bodyId: string): void {
    const key = slotKey(resourceKey, bodyId);
    const slot = this.bodies.get(key);
    if (slot === undefined) return;
    slot.refs -= 1;
    if (slot.refs <= 0) this.drop(key, slot);
  }

  /** The body's representation (opened when restored sealed); undefined = gone or unreadable. */
  body(resourceKey: string, bodyId: string): CachedEntry | undefined {
    const key = slotKey(resourceKey, bodyId);
    const slot = this.bodies.get(key);
    if (slot === undefined) return undefined;
    if (slot.entry !== undefined) return slot.entry;
    if (slot.sealed === undefined) return undefined;
    const opened = readBody(slot.sealed, sharedName.body(resourceKey, bodyId), bodyId, this.keys);
    if (!opened.ok) {
      this.unreadable += 1;
      this.resize(slot, undefined, undefined);
      return undefined;
    }
    this.resize(slot, opened.entry, undefined);
    return opened.entry;
  }

  /** The resource's index names this body first, validated at `validatedAt`. */
  touch(resourceKey: string, bodyId: string, validatedAt: number, expiresAt: number): void {
    const slot = this.indexes.get(resourceKey);
    const records = withIndexRecord(slot?.records ?? [], bodyId, validatedAt);
    this.setIndex(resourceKey, records, Math.max(slot?.expiresAt ?? 0, expiresAt));
  }

  /** The resource's bodies, most recently validated first (readable and live ones only). */
  representations(resourceKey: string, limit: number): StoredRepresentation[] {
    const index = this.indexes.get(resourceKey);
    if (index === undefined) return [];
    const now = this.clock.now();
    const out: StoredRepresentation[] = [];
    for (const record of index.records) {
      if (out.length >= limit) break;
      const slot = this.bodies.get(slotKey(resourceKey, record.bodyId));
      if (slot === undefined || slot.expiresAt <= now) continue;
      const body = this.body(resourceKey, record.bodyId);
      if (body !== undefined) out.push(storedRepresentation(body, record.validatedAt));
    }
    return out;
  }

  /** A body as a snapshot record: sealed under its secret-derived key. */
  bodyRecord(resourceKey: string, bodyId: string): { payload: Uint8Array; ttlMs: number } | undefined {
    const slot = this.bodies.get(slotKey(resourceKey, bodyId));
    const ttlMs = (slot?.expiresAt ?? 0) - this.clock.now();
    if (slot === undefined || ttlMs <= 0) return undefined;
    if (slot.sealed !== undefined) return { payload: slot.sealed, ttlMs };
    if (slot.entry === undefined) return undefined;
    return { payload: writeBody(sharedName.body(resourceKey, bodyId), slot.entry, bodyId, this.keys), ttlMs };
  }

  /** A resource's index as a snapshot record. */
  indexRecord(resourceKey: string): { payload: Uint8Array; ttlMs: number } | undefined {
    const slot = this.indexes.get(resourceKey);
    const ttlMs = (slot?.expiresAt ?? 0) - this.clock.now();
    if (slot === undefined || ttlMs <= 0) return undefined;
    return { payload: writeIndex(slot.records), ttlMs };
  }

  /** A body from a snapshot, kept sealed; false when it is already held. */
  restoreBody(resourceKey: string, bodyId: string, restored: Uint8Array, ttlMs: number): boolean {
    const sealed = ownedBytes(restored);
    const expiresAt = this.clock.now() + ttlMs;
    const key = slotKey(resourceKey, bodyId);
    const slot = this.bodies.get(key);
    if (slot === undefined) {
      const fresh: BodySlot = { resourceKey, bodyId, entry: undefined, sealed, refs: 0, size: bodySize(undefined, sealed), expiresAt };
      this.bodies.set(key, fresh);
      this.used += fresh.size;
      this.orphans.add(key);
      return true;
    }
    if (slot.entry !== undefined || slot.sealed !== undefined) return false;
    this.resize(slot, undefined, sealed);
    slot.expiresAt = Math.max(slot.expiresAt, expiresAt);
    return true;
  }

  /** An index from a snapshot, unless one is held (what is held now is at least as new). */
  restoreIndex(resourceKey: string, records: readonly IndexRecord[], ttlMs: number): boolean {
    const held = this.indexes.get(resourceKey);
    if (held !== undefined) return false;
    this.setIndex(resourceKey, records.slice(0, INDEX_MAX), this.clock.now() + ttlMs);
    return true;
  }

  /** Drops one orphan (restored, unreferenced) or expired unreferenced body; false when there is none. */
  evictOrphan(): boolean {
    for (const key of this.orphans) {
      const slot = this.bodies.get(key);
      this.orphans.delete(key);
      if (slot !== undefined && slot.refs <= 0) {
        this.drop(key, slot);
        return true;
      }
    }
    return false;
  }

  clear(): void {
    this.bodies.clear();
    this.indexes.clear();
    this.orphans.clear();
    this.used = 0;
  }

  private resize(slot: BodySlot, entry: CachedEntry | undefined, sealed: Uint8Array | undefined): void {
    this.used -= slot.size;
    slot.entry = entry;
    slot.sealed = sealed;
    slot.size = bodySize(entry, sealed);
    this.used += slot.size;
  }

  private drop(key: string, slot: BodySlot): void {
    this.bodies.delete(key);
    this.orphans.delete(key);
    this.used -= slot.size;
    const index = this.indexes.get(slot.resourceKey);
    if (index === undefined) return;
    this.setIndex(
      slot.resourceKey,
      index.records.filter((r) => r.bodyId !== slot.bodyId),
      index.expiresAt,
    );
  }

  private setIndex(resourceKey: string, records: IndexRecord[], expiresAt: number): void {
    const previous = this.indexes.get(resourceKey);
    if (previous !== undefined) this.used -= INDEX_OVERHEAD_BYTES + previous.records.length * INDEX_RECORD_BYTES;
    if (records.length === 0) {
      this.indexes.delete(resourceKey);
      return;
    }
    this.indexes.set(resourceKey, { records, expiresAt });
    this.used += INDEX_OVERHEAD_BYTES + records.length * INDEX_RECORD_BYTES;
  }
}
