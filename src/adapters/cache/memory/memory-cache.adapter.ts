/** CachePort in process memory: bounded by bytes, least recently used first out; the fallback tier behind Redis. */
import type { CachePort, CacheStats, CacheStatsPort } from '../../../domain/ports/cache.port.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';
import type { CachedEntry, StoredRepresentation } from '../../../domain/model.js';
import type { BodyKeys } from '../../crypto/body-keys.js';
import { readValue } from '../sealed-value.js';
import { resourceHeaders } from '../../../domain/http-semantics.js';
import { joinBody, ownEntry, pointerBodyId, readPointer, sharedName } from '../shared-layout.js';
import { CorruptReason } from '../entry-codec.errors.js';
import { MemoryBodies } from './memory-bodies.js';
import { ownedBytes } from './owned-bytes.js';

export interface MemoryCacheOptions {
  /** Upper bound of the bytes held (body + headers + key + a fixed overhead per entry; a shared body once). */
  maxBytes: number;
  clock?: ClockPort;
  /**
   * Keys of the shared layout (cache.shareAcrossCredentials): with them, an entry stored with a
   * resource key points at a body held once for every credential's entry of that resource. Without
   * them resource keys are ignored and every entry holds its own body.
   */
  bodyKeys?: BodyKeys;
}

/** Where a shared-layout entry's body is. */
interface SharedRef {
  resourceKey: string;
  bodyId: string;
}

interface Slot {
  /**
   * Undefined while the slot holds only `sealed` bytes (restored from a snapshot, not yet looked up).
   * Shared layout: the entry's own fields and headers, no body (joined with its body at lookup).
   */
  entry: CachedEntry | undefined;
  /** A restored entry, still sealed: opened by the first lookup that brings its credential's seal key. */
  sealed: Uint8Array | undefined;
  size: number;
  expiresAt: number;
  /** Kept so a snapshot can seal the entry for storage at rest. */
  sealKey: Uint8Array | undefined;
  /** Shared layout: the body this entry points at (counted in the bodies' bytes, not in `size`). */
  shared: SharedRef | undefined;
}

/**
 * Fixed per-entry cost besides the strings and body counted: the entry object and its headers
 * object, the slot, the Map entry, and the slack the JS heap keeps around them — about 600 bytes as
 * measured with the cache filled (docs/performance.md), where 200 were assumed before.
 */
const ENTRY_OVERHEAD_BYTES = 600;

/**
 * Joined entries of the shared layout kept for the next lookup of their slot: each holds its own
 * headers object (the body is the shared one), ~1–2 KB, so a few MB at most beside maxBytes.
 */
const MAX_JOINS = 4096;

/** The bytes an entry costs in memory: body, headers, validators and key, plus bookkeeping. */
export function entrySize(key: string, entry: CachedEntry): number {
  let size = ENTRY_OVERHEAD_BYTES + key.length * 2 + entry.body.byteLength;
  for (const name in entry.headers) size += (name.length + (entry.headers[name]?.length ?? 0)) * 2;
  size += ((entry.etag?.length ?? 0) + (entry.lastModified?.length ?? 0)) * 2;
  return size;
}

/** `entry` with its body in memory of its own size (ownedBytes), copied field by field when it needs it. */
function withOwnedBody(entry: CachedEntry): CachedEntry {
  const body = ownedBytes(entry.body);
  if (body === entry.body) return entry;
  const kept = {} as Record<string, unknown>;
  for (const field in entry) kept[field] = (entry as unknown as Record<string, unknown>)[field];
  kept['body'] = body;
  return kept as unknown as CachedEntry;
}

/**
 * Bounded in-process cache: least recently used entries go first once `maxBytes` is reached.
 * A Map keeps insertion order; a lookup re-inserts, so the first key is always the least recent.
 */
export class MemoryCache implements CachePort, CacheStatsPort {
  readonly backend = 'memory';
  private readonly slots = new Map<string, Slot>();
  /** joinedOf's memo: slot → the body it was joined with and the entry that made. */
  private readonly joins = new Map<Slot, { body: CachedEntry; joined: CachedEntry }>();
  /** Bytes of the slots (shared bodies are counted by `bodies`). */
  private bytes = 0;
  private readonly clock: ClockPort;
  /** The shared layout's bodies and indexes; undefined = every entry holds its own body. */
  readonly bodies: MemoryBodies | undefined;

  constructor(private readonly options: MemoryCacheOptions) {
    if (!Number.isFinite(options.maxBytes) || options.maxBytes <= 0) {
      throw new RangeError('MemoryCache: maxBytes must be a positive number');
    }
    this.clock = options.clock ?? systemClock;
    this.bodies = options.bodyKeys === undefined ? undefined : new MemoryBodies(options.bodyKeys, this.clock);
  }

  /** Restored entries that did not open or decode at their first lookup (dropped, counted). */
  unreadable = 0;
  /** Entries dropped to make room (least recently used first), since it was created. */
  evictions = 0;

  lookup(key: string, sealKey?: Uint8Array, resourceKey?: string): Promise<CachedEntry | undefined> {
    return Promise.resolve(this.get(key, sealKey, resourceKey));
  }

  store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void> {
    this.set(key, entry, ttlSeconds, sealKey, resourceKey);
    return Promise.resolve();
  }

  forget(key: string, _resourceKey?: string): Promise<void> {
    this.delete(key);
    return Promise.resolve();
  }

  representations(resourceKey: string, limit: number): Promise<readonly StoredRepresentation[]> {
    return Promise.resolve(this.bodies?.representations(resourceKey, limit) ?? []);
  }

  stats(): Promise<CacheStats> {
    const stats: CacheStats = { entries: this.slots.size, bytes: this.usedBytes };
    if (this.bodies !== undefined) stats.layout = { entries: this.slots.size, bodies: this.bodies.count, estimated: false };
    return Promise.resolve(stats);
  }

  /**
   * A pointer's entry joined with its body, as the last lookup of that slot made it: entries are
   * never changed in place, so the same slot (a store makes a new one) and the same body give the
   * same entry. Bounded (MAX_JOINS, oldest first): a revalidation of a hot entry copies its headers
   * once, not at every lookup.
   */
  private joinedOf(slot: Slot, own: CachedEntry, body: CachedEntry): CachedEntry {
    const held = this.joins.get(slot);
    if (held !== undefined && held.body === body) return held.joined;
    const joined = joinBody(own, body);
    if (held === undefined && this.joins.size >= MAX_JOINS) {
      const oldest = this.joins.keys().next();
      if (oldest.done !== true) this.joins.delete(oldest.value);
    }
    this.joins.set(slot, { body, joined });
    return joined;
  }

  /** Synchronous lookup (used by the breaker and tests). The resource key only matters to an entry stored without one. */
  get(key: string, sealKey?: Uint8Array, _resourceKey?: string): CachedEntry | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.clock.now()) {
      this.delete(key);
      return undefined;
    }
    if (slot.entry === undefined) return this.openRestored(key, slot, sealKey);
    let found = slot.entry;
    if (slot.shared !== undefined) {
      const body = this.bodies?.body(slot.shared.resourceKey, slot.shared.bodyId);
      if (body === undefined) {
        // a dangling pointer (its body was unreadable): a miss, never an error
        this.delete(key);
        return undefined;
      }
      found = this.joinedOf(slot, slot.entry, body);
    }
    this.slots.delete(key);
    this.slots.set(key, slot);
    return found;
  }

  set(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): void {
    const bodies = this.bodies;
    if (bodies === undefined || resourceKey === undefined) {
      const kept = withOwnedBody(entry);
      this.place(key, { entry: kept, sealed: undefined, size: entrySize(key, kept), expiresAt: 0, sealKey, shared: undefined }, ttlSeconds);
      return;
    }
    const bodyId = bodies.keys.idOf(entry.body);
    const own = ownEntry(entry, bodies.headersOf(resourceKey, bodyId) ?? resourceHeaders(entry.headers));
    const size = entrySize(key, own);
    if (size + bodies.costOf(resourceKey, bodyId, entry) > this.options.maxBytes || ttlSeconds <= 0) {
      this.delete(key);
      return;
    }
    const expiresAt = this.clock.now() + ttlSeconds * 1000;
    // acquire before the old slot goes: a revalidated entry keeps pointing at the same body
    bodies.acquire(resourceKey, bodyId, entry, expiresAt);
    bodies.touch(resourceKey, bodyId, entry.validatedAt, expiresAt);
    this.place(key, { entry: own, sealed: undefined, size, expiresAt: 0, sealKey, shared: { resourceKey, bodyId } }, ttlSeconds);
  }

  /**
   * Keeps a restored entry as the sealed bytes a snapshot carries: the credential that can open it is
   * only known when a client asks for it again.
   */
  setSealed(key: string, restored: Uint8Array, ttlSeconds: number): void {
    const sealed = ownedBytes(restored);
    this.place(key, { entry: undefined, sealed, size: ENTRY_OVERHEAD_BYTES + key.length * 2 + sealed.byteLength, expiresAt: 0, sealKey: undefined, shared: undefined }, ttlSeconds);
  }

  /**
   * Keeps a restored entry of the shared layout (a pointer, sealed with its credential's key) and
   * points it at its body, which the snapshot carries too (before or after it). False when it is not
   * one, or without the shared layout.
   */
  setSealedPointer(resourceKey: string, key: string, sealed: Uint8Array, ttlSeconds: number): boolean {
    const bodyId = pointerBodyId(sealed);
    if (this.bodies === undefined || bodyId === undefined || ttlSeconds <= 0) return false;
    const size = ENTRY_OVERHEAD_BYTES + key.length * 2 + sealed.byteLength;
    if (size > this.options.maxBytes) return false;
    this.bodies.acquire(resourceKey, bodyId, undefined, this.clock.now() + ttlSeconds * 1000);
    this.place(key, { entry: undefined, sealed: ownedBytes(sealed), size, expiresAt: 0, sealKey: undefined, shared: { resourceKey, bodyId } }, ttlSeconds);
    return true;
  }

  private place(key: string, slot: Slot, ttlSeconds: number): void {
    this.delete(key);
    if (slot.size > this.options.maxBytes || ttlSeconds <= 0) {
      if (slot.shared !== undefined) this.bodies?.release(slot.shared.resourceKey, slot.shared.bodyId);
      return;
    }
    slot.expiresAt = this.clock.now() + ttlSeconds * 1000;
    this.slots.set(key, slot);
    this.bytes += slot.size;
    this.evict();
  }

  private openRestored(key: string, slot: Slot, sealKey: Uint8Array | undefined): CachedEntry | undefined {
    if (slot.sealed === undefined) return undefined;
    const ttlSeconds = (slot.expiresAt - this.clock.now()) / 1000;
    if (slot.shared !== undefined) return this.openRestoredPointer(key, slot, slot.shared, sealKey, ttlSeconds);
    if (sealKey === undefined) return undefined;
    const opened = readValue(slot.sealed, key, sealKey);
    if (!opened.ok) {
      this.unreadable += 1;
      this.delete(key);
      return undefined;
    }
    this.place(key, { entry: opened.entry, sealed: undefined, size: entrySize(key, opened.entry), expiresAt: 0, sealKey, shared: undefined }, ttlSeconds);
    return opened.entry;
  }

  private openRestoredPointer(key: string, slot: Slot, shared: SharedRef, sealKey: Uint8Array | undefined, ttlSeconds: number): CachedEntry | undefined {
    const bodies = this.bodies as MemoryBodies;
    const opened = readPointer(slot.sealed as Uint8Array, sharedName.entry(shared.resourceKey, key), sealKey);
    // asked without the key that opens it (a tool, not its credential): it stays for its credential
    if (!opened.ok && opened.error.reason === CorruptReason.ENCRYPTED) return undefined;
    const body = opened.ok ? bodies.body(shared.resourceKey, shared.bodyId) : undefined;
    if (!opened.ok || body === undefined) {
      if (!opened.ok) this.unreadable += 1;
      this.delete(key);
      return undefined;
    }
    // the slot keeps its reference on the body: re-placed with the same pointer
    bodies.acquire(shared.resourceKey, shared.bodyId, undefined, slot.expiresAt);
    this.place(key, { entry: opened.entry, sealed: undefined, size: entrySize(key, opened.entry), expiresAt: 0, sealKey, shared }, ttlSeconds);
    return joinBody(opened.entry, body);
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.joins.delete(slot);
    this.bytes -= slot.size;
    if (slot.shared !== undefined) this.bodies?.release(slot.shared.resourceKey, slot.shared.bodyId);
  }

  /** Every live entry with its remaining TTL, least recent first (shared layout: the own entry, no body). */
  *entries(): IterableIterator<{ key: string; entry: CachedEntry; ttlMs: number; sealKey: Uint8Array | undefined; shared: SharedRef | undefined }> {
    const now = this.clock.now();
    for (const [key, slot] of this.slots) {
      if (slot.expiresAt > now && slot.entry !== undefined) yield { key, entry: slot.entry, ttlMs: slot.expiresAt - now, sealKey: slot.sealKey, shared: slot.shared };
    }
  }

  /**
   * The keys held now, least recent first (for snapshots: a fixed list to walk while lookups keep
   * reordering the map; it holds references to the key strings, not the entries).
   */
  keys(): string[] {
    return Array.from(this.slots.keys());
  }

  /** A live entry with its remaining TTL, without touching the LRU order (for snapshots and restores; shared layout: the own entry). */
  peek(key: string): { entry: CachedEntry | undefined; sealed: Uint8Array | undefined; ttlMs: number; sealKey: Uint8Array | undefined; shared: SharedRef | undefined } | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const ttlMs = slot.expiresAt - this.clock.now();
    return ttlMs > 0 ? { entry: slot.entry, sealed: slot.sealed, ttlMs, sealKey: slot.sealKey, shared: slot.shared } : undefined;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Bytes held: entries, and each shared body and index once. */
  get usedBytes(): number {
    return this.bytes + (this.bodies?.bytes ?? 0);
  }

  clear(): void {
    this.slots.clear();
    this.joins.clear();
    this.bytes = 0;
    this.bodies?.clear();
  }

  private evict(): void {
    if (this.usedBytes <= this.options.maxBytes) return;
    // restored bodies nothing points at go first, then the least recently used entries (with the
    // bodies no other entry points at); each counts as dropped for room
    while (this.bodies?.evictOrphan() === true) {
      this.evictions += 1;
      if (this.usedBytes <= this.options.maxBytes) return;
    }
    for (const key of this.slots.keys()) {
      this.delete(key);
      this.evictions += 1;
      if (this.usedBytes <= this.options.maxBytes) return;
    }
  }
}
