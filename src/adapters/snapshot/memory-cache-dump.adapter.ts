import type { CacheDumpPort, DumpedEntry } from '../../domain/ports/cache-dump.port.js';
import type { MemoryCache } from '../cache/memory/memory-cache.adapter.js';
import { CODEC_VERSION, decodeEntry, encodeEntry } from '../cache/entry-codec.js';
import { CorruptEntryError } from '../cache/entry-codec.errors.js';
import { writeValue } from '../cache/sealed-value.js';
import { parseIndex, parseSharedName, sharedName, SHARED_ENTRY_FORMAT, writePointer, type SharedName } from '../cache/shared-layout.js';
import { isSealed } from '../crypto/entry-sealer.js';

/**
 * Payloads are what Redis values are: the entry codec's bytes sealed (AES-256-GCM) with the entry's
 * credential-derived key, so a snapshot reveals no body without the token, and a snapshot taken from
 * one backend restores into the other. Entries stored without a seal key (tools, tests) stay plain.
 * With shared bodies (cache.shareAcrossCredentials) the records are those of the shared layout
 * (src/adapters/cache/shared-layout.ts): entries, bodies and indexes, named as in Redis, and the
 * format is SHARED_ENTRY_FORMAT.
 */
export const ENTRY_FORMAT = `mirror-entry-v${CODEC_VERSION}`;

export interface MemoryCacheDumpOptions {
  /** Entries per batch (default 256). */
  batchEntries?: number;
}

/**
 * The memory cache as a CacheDumpPort. Walks a copy of the key list (lookups reorder the LRU map
 * while a snapshot runs, which would make a live iteration visit entries twice or never end) and
 * reads each entry without touching its LRU position. Bodies are compressed entry by entry before
 * sealing (ciphertext does not compress); restored entries stay sealed until their credential asks.
 */
export class MemoryCacheDump implements CacheDumpPort {
  readonly backend = 'memory';
  readonly entryFormat: string;
  /** Payloads that did not decode during restores (skipped). */
  unreadable = 0;
  private readonly batchEntries: number;
  /** A memory cache loses its data only with its process, and this object with it. */
  private marked = false;

  constructor(
    private readonly cache: MemoryCache,
    options: MemoryCacheDumpOptions = {},
  ) {
    this.batchEntries = options.batchEntries ?? 256;
    this.entryFormat = cache.bodies === undefined ? ENTRY_FORMAT : SHARED_ENTRY_FORMAT;
  }

  /** Entries the memory cache dropped for room (a restore larger than cache.memory.maxBytes keeps the most recent). */
  get evictions(): number {
    return this.cache.evictions;
  }

  isEmpty(): Promise<boolean> {
    return Promise.resolve(this.cache.size === 0);
  }

  isMarkedRestored(): Promise<boolean> {
    return Promise.resolve(this.marked);
  }

  markRestored(): Promise<void> {
    this.marked = true;
    return Promise.resolve();
  }

  async *entries(): AsyncGenerator<DumpedEntry[]> {
    const keys = this.cache.keys();
    // a shared body and a resource's index go into the snapshot once, with the first entry that needs them
    const written = new Set<string>();
    for (let start = 0; start < keys.length; start += this.batchEntries) {
      const batch: DumpedEntry[] = [];
      const end = Math.min(keys.length, start + this.batchEntries);
      for (let i = start; i < end; i += 1) {
        const key = keys[i]!;
        const live = this.cache.peek(key);
        if (live === undefined) continue;
        if (live.shared !== undefined) {
          this.sharedRecords(key, live, written, batch);
          continue;
        }
        let payload: Uint8Array | undefined = live.sealed;
        if (live.entry !== undefined) {
          payload = live.sealKey === undefined ? encodeEntry(live.entry, { compression: 'none' }) : writeValue(live.entry, key, live.sealKey);
        }
        if (payload !== undefined) batch.push({ key, payload, ttlMs: live.ttlMs });
      }
      if (batch.length > 0) yield batch;
      // let requests run between batches: a snapshot must not stall the event loop
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** A shared-layout entry, its body and its resource's index (each body and index once per snapshot). */
  private sharedRecords(
    key: string,
    live: NonNullable<ReturnType<MemoryCache['peek']>>,
    written: Set<string>,
    batch: DumpedEntry[],
  ): void {
    const bodies = this.cache.bodies;
    const shared = live.shared;
    if (bodies === undefined || shared === undefined) return;
    const { resourceKey, bodyId } = shared;
    const name = sharedName.entry(resourceKey, key);
    const payload = live.entry !== undefined ? writePointer(name, live.entry, bodyId, live.sealKey) : live.sealed;
    if (payload === undefined) return;
    batch.push({ key: name, payload, ttlMs: live.ttlMs });
    const bodyName = sharedName.body(resourceKey, bodyId);
    if (!written.has(bodyName)) {
      written.add(bodyName);
      const body = bodies.bodyRecord(resourceKey, bodyId);
      if (body !== undefined) batch.push({ key: bodyName, ...body });
    }
    const indexName = sharedName.index(resourceKey);
    if (!written.has(indexName)) {
      written.add(indexName);
      const index = bodies.indexRecord(resourceKey);
      if (index !== undefined) batch.push({ key: indexName, ...index });
    }
  }

  /** Restores one record of the shared layout; true when it was written. */
  private restoreShared(name: SharedName, payload: Uint8Array, ttlMs: number): boolean {
    const bodies = this.cache.bodies;
    if (bodies === undefined) return false;
    // copies: a payload is a view into a whole decoded block, which must not stay alive with it
    if (name.kind === 'entry') {
      if (this.cache.peek(name.key) !== undefined) return false;
      return this.cache.setSealedPointer(name.resourceKey, name.key, Buffer.from(payload), ttlMs / 1000);
    }
    if (name.kind === 'body') return isSealed(payload) && bodies.restoreBody(name.resourceKey, name.bodyId, Buffer.from(payload), ttlMs);
    const records = parseIndex(payload);
    return records.length > 0 && bodies.restoreIndex(name.resourceKey, records, ttlMs);
  }

  restoreIfAbsent(entries: readonly DumpedEntry[]): Promise<number> {
    let written = 0;
    for (const { key, payload, ttlMs } of entries) {
      if (ttlMs <= 0) continue;
      const shared = parseSharedName(key);
      if (shared !== undefined) {
        if (this.restoreShared(shared, payload, ttlMs)) written += 1;
        continue;
      }
      if (this.cache.peek(key) !== undefined) continue;
      if (isSealed(payload)) {
        // a copy: the payload is a view into a whole decoded block, which must not stay alive with it
        this.cache.setSealed(key, Buffer.from(payload), ttlMs / 1000);
        written += 1;
        continue;
      }
      let entry;
      try {
        // a copy: the payload is a view into a whole decoded block, which must not stay alive with it
        entry = decodeEntry(Buffer.from(payload));
      } catch (error) {
        if (!(error instanceof CorruptEntryError)) throw error;
        this.unreadable += 1;
        continue;
      }
      this.cache.set(key, entry, ttlMs / 1000);
      written += 1;
    }
    return Promise.resolve(written);
  }
}
