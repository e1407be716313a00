/**
 * The Redis cache as a CacheDumpPort, for snapshots: SCAN (never KEYS) on every master, values and
 * TTLs read in pipelines on the node that owns them, restored with SET NX PX so an entry already
 * present is never replaced.
 *
 * Payloads are the values exactly as Redis holds them (entry-codec bytes, sealed or not; with shared
 * bodies also the bodies and indexes of the shared layout, all plain strings): nothing is decoded
 * here, so a snapshot carries what Redis carries.
 */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { CacheDumpPort, DumpedEntry } from '../../../domain/ports/cache-dump.port.js';
import { CODEC_VERSION } from '../entry-codec.js';

import { SHARED_ENTRY_FORMAT } from '../shared-layout.js';

/** Same codec bytes as the memory dump's payloads, so snapshots move between the two backends. */
export const REDIS_ENTRY_FORMAT = `mirror-entry-v${CODEC_VERSION}`;

/**
 * Keys under the prefix that start with this are the mirror's bookkeeping (leases), not entries:
 * never dumped, never counted as "not empty". Entry keys are hex or "anon:...", never this.
 */
export const RESERVED_KEY_MARK = '__';

export interface RedisCacheDumpOptions {
  /** A connected client; a dedicated one is best, so bulk reads do not queue behind request lookups. */
  client: Redis | Cluster;
  /** RedisCacheOptions.keyPrefix: the dump covers the keys under it. */
  keyPrefix: string;
  /** SCAN COUNT hint (default 1000). */
  scanCount?: number;
  /** Entries fetched per pipeline, and per batch yielded (default 256). */
  batchEntries?: number;
  /** TTL given to a key that has none (default 1 h); the mirror always sets one, so only foreign writes lack it. */
  defaultTtlMs?: number;
  /**
   * The cache stores bodies once per resource (cache.shareAcrossCredentials): its keys are entries,
   * bodies and indexes of the shared layout, and the dump's entryFormat says so.
   */
  sharedBodies?: boolean;
}

/** MATCH pattern for the keys that start with `prefix` (glob characters escaped). */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}

export class RedisCacheDump implements CacheDumpPort {
  readonly backend = 'redis';
  readonly entryFormat: string;
  /** Keys that vanished or failed between SCAN and GET (expired, evicted, moved during a reshard). */
  skipped = 0;
  private readonly client: Redis | Cluster;
  private readonly prefix: string;
  private readonly pattern: string;
  private readonly scanCount: number;
  private readonly batchEntries: number;
  private readonly defaultTtlMs: number;

  constructor(options: RedisCacheDumpOptions) {
    this.client = options.client;
    this.prefix = options.keyPrefix;
    this.pattern = prefixPattern(options.keyPrefix);
    this.scanCount = options.scanCount ?? 1000;
    this.batchEntries = options.batchEntries ?? 256;
    this.defaultTtlMs = options.defaultTtlMs ?? 60 * 60 * 1000;
    this.entryFormat = options.sharedBodies === true ? SHARED_ENTRY_FORMAT : REDIS_ENTRY_FORMAT;
  }

  /** The nodes to SCAN: every master of a cluster, or the one server (Sentinel: the current master). */
  masters(): Redis[] {
    return isCluster(this.client) ? this.client.nodes('master') : [this.client];
  }

  async isEmpty(): Promise<boolean> {
    for (const node of this.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.pattern, 'COUNT', this.scanCount, 'TYPE', 'string');
        if (keys.some((key) => this.isEntryKey(key))) return false;
        cursor = next;
      } while (cursor !== '0');
    }
    return true;
  }

  async *entries(): AsyncGenerator<DumpedEntry[]> {
    for (const node of this.masters()) {
      let cursor = '0';
      let pending: string[] = [];
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.pattern, 'COUNT', this.scanCount, 'TYPE', 'string');
        cursor = next;
        for (const key of keys) if (this.isEntryKey(key)) pending.push(key);
        while (pending.length >= this.batchEntries || (cursor === '0' && pending.length > 0)) {
          const keysNow = pending.slice(0, this.batchEntries);
          pending = pending.slice(keysNow.length);
          const batch = await this.read(node, keysNow);
          if (batch.length > 0) yield batch;
        }
      } while (cursor !== '0');
    }
  }

  async isMarkedRestored(): Promise<boolean> {
    const found = await Promise.all(this.markKeys().map((key) => this.client.exists(key)));
    return found.every((n) => n === 1);
  }

  async markRestored(): Promise<void> {
    const at = new Date().toISOString();
    // no TTL: the mark lives as long as the data it vouches for
    await Promise.all(this.markKeys().map((key) => this.client.set(key, at)));
  }

  /**
   * One mark per master, so a cluster shard that lost its data alone is noticed too: the key's hash
   * tag is chosen so that its slot is served by that master (the client routes it there).
   */
  private markKeys(): string[] {
    const base = `${this.prefix}${RESERVED_KEY_MARK}restored`;
    if (!isCluster(this.client)) return [base];
    const cluster = this.client;
    const keys = new Set<string>();
    for (const node of cluster.nodes('master')) {
      const id = `${node.options.host}:${node.options.port}`;
      let key = base; // no slot found for it (an address mapping hides the owner): one shared mark
      for (let tag = 0; tag < 4 * 16384; tag += 1) {
        const candidate = `${base}{${tag}}`;
        if (cluster.slots[calculateSlot(candidate)]?.[0] === id) {
          key = candidate;
          break;
        }
      }
      keys.add(key);
    }
    return keys.size > 0 ? [...keys] : [base];
  }

  async restoreIfAbsent(entries: readonly DumpedEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const ttl = (e: DumpedEntry): number => Math.max(1, Math.round(e.ttlMs));
    const payload = (e: DumpedEntry): Buffer => (Buffer.isBuffer(e.payload) ? e.payload : Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength));
    let replies: Array<string | null>;
    if (isCluster(this.client)) {
      // a cluster pipeline must stay on one node: send the commands one by one (ioredis writes them
      // without waiting for each answer, so they still travel back to back)
      const cluster = this.client;
      replies = await Promise.all(entries.map((e) => cluster.set(this.prefix + e.key, payload(e), 'PX', ttl(e), 'NX')));
    } else {
      const pipeline = this.client.pipeline();
      for (const e of entries) pipeline.set(this.prefix + e.key, payload(e), 'PX', ttl(e), 'NX');
      const results = (await pipeline.exec()) ?? [];
      replies = results.map(([error, reply]) => {
        if (error) throw error;
        return reply as string | null;
      });
    }
    return replies.filter((reply) => reply === 'OK').length;
  }

  private isEntryKey(key: string): boolean {
    return !key.startsWith(RESERVED_KEY_MARK, this.prefix.length);
  }

  /** Values and remaining TTLs of `keys`, in one pipeline on the node that owns them. */
  private async read(node: Redis, keys: string[]): Promise<DumpedEntry[]> {
    const pipeline = node.pipeline();
    for (const key of keys) {
      pipeline.getBuffer(key);
      pipeline.pttl(key);
    }
    const results = (await pipeline.exec()) ?? [];
    const out: DumpedEntry[] = [];
    for (let i = 0; i < keys.length; i += 1) {
      const [valueError, value] = results[2 * i] ?? [new Error('no reply'), null];
      const [ttlError, ttl] = results[2 * i + 1] ?? [new Error('no reply'), null];
      // a key gone since the SCAN (-2 / null), or owned by another node after a reshard (MOVED): skipped
      if (valueError || ttlError || !Buffer.isBuffer(value) || typeof ttl !== 'number' || ttl === -2) {
        this.skipped += 1;
        continue;
      }
      out.push({ key: keys[i]!.slice(this.prefix.length), payload: value, ttlMs: ttl === -1 ? this.defaultTtlMs : ttl });
    }
    return out;
  }
}
