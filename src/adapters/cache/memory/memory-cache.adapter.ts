/** CachePort in process memory: bounded by bytes, least recently used first out; the fallback tier behind Redis. */
import type { CachePort, CacheStatsPort } from '../../../domain/ports/cache.port.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';
import type { CachedEntry } from '../../../domain/model.js';
import { readValue } from '../sealed-value.js';

export interface MemoryCacheOptions {
  /** Upper bound of the bytes held (body + headers + key + a fixed overhead per entry). */
  maxBytes: number;
  clock?: ClockPort;
}

interface Slot {
  /** Undefined while the slot holds only `sealed` bytes (restored from a snapshot, not yet looked up). */
  entry: CachedEntry | undefined;
  /** A restored entry, still sealed: opened by the first lookup that brings its credential's seal key. */
  sealed: Uint8Array | undefined;
  size: number;
  expiresAt: number;
  /** Kept so a snapshot can seal the entry for storage at rest. */
  sealKey: Uint8Array | undefined;
}

/** Fixed per-entry bookkeeping cost: the Map slot, the entry object, its small fields. */
const ENTRY_OVERHEAD_BYTES = 200;

/** The bytes an entry costs in memory: body, headers, validators and key, plus bookkeeping. */
export function entrySize(key: string, entry: CachedEntry): number {
  let size = ENTRY_OVERHEAD_BYTES + key.length * 2 + entry.body.byteLength;
  for (const name in entry.headers) size += (name.length + (entry.headers[name]?.length ?? 0)) * 2;
  size += ((entry.etag?.length ?? 0) + (entry.lastModified?.length ?? 0)) * 2;
  return size;
}

/**
 * Bounded in-process cache: least recently used entries go first once `maxBytes` is reached.
 * A Map keeps insertion order; a lookup re-inserts, so the first key is always the least recent.
 */
export class MemoryCache implements CachePort, CacheStatsPort {
  readonly backend = 'memory';
  private readonly slots = new Map<string, Slot>();
  private bytes = 0;
  private readonly clock: ClockPort;

  constructor(private readonly options: MemoryCacheOptions) {
    if (!Number.isFinite(options.maxBytes) || options.maxBytes <= 0) {
      throw new RangeError('MemoryCache: maxBytes must be a positive number');
    }
    this.clock = options.clock ?? systemClock;
  }

  /** Restored entries that did not open or decode at their first lookup (dropped, counted). */
  unreadable = 0;
  /** Entries dropped to make room (least recently used first), since it was created. */
  evictions = 0;

  lookup(key: string, sealKey?: Uint8Array): Promise<CachedEntry | undefined> {
    return Promise.resolve(this.get(key, sealKey));
  }

  store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array): Promise<void> {
    this.set(key, entry, ttlSeconds, sealKey);
    return Promise.resolve();
  }

  forget(key: string): Promise<void> {
    this.delete(key);
    return Promise.resolve();
  }

  stats(): Promise<{ entries: number; bytes: number }> {
    return Promise.resolve({ entries: this.slots.size, bytes: this.bytes });
  }

  /** Synchronous lookup (used by the breaker and tests). */
  get(key: string, sealKey?: Uint8Array): CachedEntry | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt <= this.clock.now()) {
      this.delete(key);
      return undefined;
    }
    if (slot.entry === undefined) return this.openRestored(key, slot, sealKey);
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.entry;
  }

  set(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array): void {
    this.place(key, { entry, sealed: undefined, size: entrySize(key, entry), expiresAt: 0, sealKey }, ttlSeconds);
  }

  /**
   * Keeps a restored entry as the sealed bytes a snapshot carries: the credential that can open it is
   * only known when a client asks for it again.
   */
  setSealed(key: string, sealed: Uint8Array, ttlSeconds: number): void {
    this.place(key, { entry: undefined, sealed, size: ENTRY_OVERHEAD_BYTES + key.length * 2 + sealed.byteLength, expiresAt: 0, sealKey: undefined }, ttlSeconds);
  }

  private place(key: string, slot: Slot, ttlSeconds: number): void {
    this.delete(key);
    if (slot.size > this.options.maxBytes || ttlSeconds <= 0) return;
    slot.expiresAt = this.clock.now() + ttlSeconds * 1000;
    this.slots.set(key, slot);
    this.bytes += slot.size;
    this.evict();
  }

  private openRestored(key: string, slot: Slot, sealKey: Uint8Array | undefined): CachedEntry | undefined {
    if (slot.sealed === undefined || sealKey === undefined) return undefined;
    const opened = readValue(slot.sealed, key, sealKey);
    if (!opened.ok) {
      this.unreadable += 1;
      this.delete(key);
      return undefined;
    }
    this.place(key, { entry: opened.entry, sealed: undefined, size: entrySize(key, opened.entry), expiresAt: 0, sealKey }, (slot.expiresAt - this.clock.now()) / 1000);
    return opened.entry;
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.bytes -= slot.size;
  }

  /** Every live entry with its remaining TTL, least recent first (for snapshots). */
  *entries(): IterableIterator<{ key: string; entry: CachedEntry; ttlMs: number; sealKey: Uint8Array | undefined }> {
    const now = this.clock.now();
    for (const [key, slot] of this.slots) {
      if (slot.expiresAt > now && slot.entry !== undefined) yield { key, entry: slot.entry, ttlMs: slot.expiresAt - now, sealKey: slot.sealKey };
    }
  }

  /**
   * The keys held now, least recent first (for snapshots: a fixed list to walk while lookups keep
   * reordering the map; it holds references to the key strings, not the entries).
   */
  keys(): string[] {
    return Array.from(this.slots.keys());
  }

  /** A live entry with its remaining TTL, without touching the LRU order (for snapshots and restores). */
  peek(key: string): { entry: CachedEntry | undefined; sealed: Uint8Array | undefined; ttlMs: number; sealKey: Uint8Array | undefined } | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const ttlMs = slot.expiresAt - this.clock.now();
    return ttlMs > 0 ? { entry: slot.entry, sealed: slot.sealed, ttlMs, sealKey: slot.sealKey } : undefined;
  }

  get size(): number {
    return this.slots.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.slots.clear();
    this.bytes = 0;
  }

  private evict(): void {
    if (this.bytes <= this.options.maxBytes) return;
    for (const [key, slot] of this.slots) {
      this.slots.delete(key);
      this.bytes -= slot.size;
      this.evictions += 1;
      if (this.bytes <= this.options.maxBytes) return;
    }
  }
}
