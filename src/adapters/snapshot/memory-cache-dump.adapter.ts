import type { CacheDumpPort, DumpedEntry } from '../../domain/ports/cache-dump.port.js';
import type { MemoryCache } from '../cache/memory/memory-cache.adapter.js';
import { CODEC_VERSION, decodeEntry, encodeEntry } from '../cache/entry-codec.js';
import { CorruptEntryError } from '../cache/entry-codec.errors.js';
import { writeValue } from '../cache/sealed-value.js';
import { isSealed } from '../crypto/entry-sealer.js';

/**
 * Payloads are what Redis values are: the entry codec's bytes sealed (AES-256-GCM) with the entry's
 * credential-derived key, so a snapshot reveals no body without the token, and a snapshot taken from
 * one backend restores into the other. Entries stored without a seal key (tools, tests) stay plain.
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
  readonly entryFormat = ENTRY_FORMAT;
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
    for (let start = 0; start < keys.length; start += this.batchEntries) {
      const batch: DumpedEntry[] = [];
      const end = Math.min(keys.length, start + this.batchEntries);
      for (let i = start; i < end; i += 1) {
        const key = keys[i]!;
        const live = this.cache.peek(key);
        if (live === undefined) continue;
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

  restoreIfAbsent(entries: readonly DumpedEntry[]): Promise<number> {
    let written = 0;
    for (const { key, payload, ttlMs } of entries) {
      if (ttlMs <= 0 || this.cache.peek(key) !== undefined) continue;
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
