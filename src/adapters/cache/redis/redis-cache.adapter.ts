/**
 * CachePort over Redis (ioredis): standalone with an optional reader endpoint, Sentinel, or Cluster.
 *
 * One round trip per operation: lookup = GET (Buffer), store = SET key value PX ttl, forget = DEL.
 * Key = keyPrefix + key. Values are `entry-codec` bytes, sealed with AES-256-GCM when the caller
 * passes a seal key (the cache key is the additional authenticated data, so a value moved under
 * another key does not open). A value that does not open or decode is a miss and a `cache.corrupt`
 * event, never an error; with a seal key an unsealed value is refused (it could be forged). A failed
 * command rejects at once (no offline queue, a command timeout) with MirrorError CACHE_UNAVAILABLE,
 * so the breaker in front of this adapter can fall back to memory; in a cluster, a command for a
 * slot whose master stopped answering is failed before it is sent (cluster-health.ts). With body keys
 * (cache.shareAcrossCredentials), an operation given a resource key uses the shared layout instead
 * (redis-shared-bodies.ts: entry, body and index of a resource under one hash tag, one Lua script per
 * operation). The connections (start, readiness, reconnects) are `RedisConnections`'
 * (redis-client.ts); `start()` never throws: an unreachable Redis is retried in the background.
 *
 * With `nearCacheBytes` (standalone or Sentinel, no reader endpoint) lookups are answered from the
 * near cache while it is armed (near-cache.ts, near-cache-tracking.ts): what an earlier lookup of the
 * same key returned, kept until Redis says the key changed, its TTL ends, or certainty is lost.
 * Lookups that may fill it run on its tracked connection; stores and forgets drop the copy before
 * and after their write.
 */
import type { Cluster, Redis } from 'ioredis';
import { ErrorCode, MirrorError } from '../../../domain/errors.js';
import { EventName } from '../../../domain/events/events.js';
import type { CachedEntry, StoredRepresentation } from '../../../domain/model.js';
import type { CachePort, CacheStats, CacheStatsPort } from '../../../domain/ports/cache.port.js';
import type { BodyKeys } from '../../crypto/body-keys.js';
import { parseSharedName } from '../shared-layout.js';
import { defineSharedCommands, RedisSharedBodies } from './redis-shared-bodies.js';
import type { EventBusPort } from '../../../domain/ports/event-bus.port.js';
import type { EncodeOptions } from '../entry-codec.js';
import { readValue, writeValue } from '../sealed-value.js';
import { errorSummary, RedisConnections, type RedisSupervisionOptions, type RedisTopology } from './redis-client.js';
import { OpenedValues } from './opened-values.js';
import { NearCache, type NearCacheCounters } from './near-cache.js';
import { NearCacheTracking } from './near-cache-tracking.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';

/** GET and PTTL in one round trip: the near cache's read of a per-credential entry. */
const NEAR_GET = `
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
`;

interface NearGetCommand {
  ghmNearGetBuffer(key: string): Promise<[Buffer, number] | null>;
}

export interface RedisCacheOptions extends RedisSupervisionOptions {
  /** Prepended to every key ("ghm:v1:"). In a cluster it must not contain `{`, or every key lands in one slot. */
  keyPrefix: string;
  /** Receives cache.error, cache.corrupt, cache.misconfigured and the connections' events. */
  events?: EventBusPort;
  /** Body compression settings of the codec (defaults from the measurement in docs/redis.md). */
  codec?: EncodeOptions;
  /** Keys of the shared layout (cache.shareAcrossCredentials); without them resource keys are ignored. */
  bodyKeys?: BodyKeys;
  /**
   * Bytes of the near cache (cache.redis.nearCacheBytes): an in-process copy of what lookups
   * returned, kept correct by Redis' invalidations (near-cache.ts, near-cache-tracking.ts). 0 or
   * absent = off; always off for a cluster and with a reader endpoint.
   */
  nearCacheBytes?: number;
  /** The near cache's canary period (default 2000 ms). */
  nearCacheCheckEveryMs?: number;
}

/** What the near cache did, for the metrics (counters since start, and its size now). */
export interface NearCacheStats extends NearCacheCounters {
  armed: boolean;
  entries: number;
  bytes: number;
}

type Operation = 'lookup' | 'store' | 'forget' | 'representations' | 'stats';

/**
 * Keys sampled per master (RANDOMKEY, one pipeline per /metrics scrape) to estimate the shared
 * layout's entries and bodies. Bodies are few (one per resource against one entry per credential and
 * resource): with 64 samples a body share of ~4 % came out at 11 % in a CI run (7 of 64); 256
 * quarter the variance, for a pipeline that stays well under a millisecond.
 */
const LAYOUT_SAMPLE = 256;

/** Classify an ioredis failure into a stable code for events (no message parsing by listeners). */
function redisErrorCode(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const name = err instanceof Error ? err.name : '';
  if (message.includes('Command timed out')) return 'REDIS_TIMEOUT';
  if (message.startsWith('CLUSTERDOWN')) return 'REDIS_CLUSTER_DOWN';
  if (
    message.includes("isn't writeable") ||
    message.includes('enableOfflineQueue') ||
    message.includes('Connection is closed') ||
    message.includes("isn't ready") ||
    message.includes('Cluster is ended') ||
    message.includes(SLOT_UNREACHABLE) ||
    name === 'MaxRetriesPerRequestError'
  ) {
    return 'REDIS_UNAVAILABLE';
  }
  if (name === 'ReplyError') return 'REDIS_REPLY';
  return 'REDIS_ERROR';
}

/** The message of a command failed at once because its slot's cluster master does not answer. */
const SLOT_UNREACHABLE = "the cluster master of this key's slot does not answer";

export class RedisCache implements CachePort, CacheStatsPort {
  readonly backend = 'redis';
  readonly topology: RedisTopology;
  /** Where it points, without credentials. */
  readonly description: string;
  private readonly connections: RedisConnections;
  private readonly writer: Redis | Cluster;
  private readonly prefix: string;
  /**
   * The last decoded entries, by key, with the exact bytes they came from: a hit whose value has not
   * changed skips opening and decompressing it (the hot path is one GET and a byte comparison).
   */
  private readonly decoded = new OpenedValues<CachedEntry>(DECODED_MEMO_BYTES);
  /** The shared layout, when body keys were given. */
  private readonly shared: RedisSharedBodies | undefined;
  /** The near cache and what keeps it correct (nearCacheBytes > 0, standalone or Sentinel without a reader). */
  private readonly near: NearCache<CachedEntry> | undefined;
  private readonly tracking: NearCacheTracking | undefined;
  /** The connection of the near cache's reads (its keys are tracked). */
  private readonly nearReads: Redis | undefined;
  private readonly clock: ClockPort;

  constructor(private readonly options: RedisCacheOptions) {
    if (typeof options.keyPrefix !== 'string') throw new TypeError('RedisCache: keyPrefix is required (may be "")');
    if (!Number.isFinite(options.commandTimeoutMs) || options.commandTimeoutMs <= 0) {
      throw new RangeError('RedisCache: commandTimeoutMs must be a positive number');
    }
    const nearBytes = options.nearCacheBytes ?? 0;
    // a reader replica would need its own tracking, with the subscriber on the very node a DNS reader endpoint gave it: not done
    const nearWanted = nearBytes > 0 && !(options.clusterNodes !== undefined && options.clusterNodes.length > 0) && !options.readerUrl;
    this.connections = new RedisConnections({ ...options, nearConnections: nearWanted });
    this.clock = options.clock ?? systemClock;
    this.topology = this.connections.topology;
    this.description = this.connections.description;
    this.writer = this.connections.writer;
    this.prefix = options.keyPrefix;
    if (options.bodyKeys !== undefined) {
      const sharedOptions = { prefix: this.prefix, keys: options.bodyKeys, ...(options.codec ? { codec: options.codec } : {}) };
      this.shared = new RedisSharedBodies(sharedOptions);
      defineSharedCommands(this.writer);
      if (this.connections.reader !== undefined) defineSharedCommands(this.connections.reader);
      if (this.connections.nearReads !== undefined) defineSharedCommands(this.connections.nearReads);
    }
    const { nearReads, nearInvalidations } = this.connections;
    if (nearReads !== undefined && nearInvalidations !== undefined) {
      nearReads.defineCommand('ghmNearGet', { numberOfKeys: 1, lua: NEAR_GET });
      this.nearReads = nearReads;
      this.near = new NearCache<CachedEntry>(nearBytes, () => this.clock.now());
      this.tracking = new NearCacheTracking({
        reads: nearReads,
        invalidations: nearInvalidations,
        near: this.near,
        prefix: this.prefix,
        checkTimeoutMs: Math.max(1000, 5 * options.commandTimeoutMs),
        ...(options.nearCacheCheckEveryMs !== undefined ? { checkEveryMs: options.nearCacheCheckEveryMs } : {}),
        ...(options.events !== undefined ? { events: options.events } : {}),
        endpoint: this.connections.description,
      });
    }
    if (this.topology === 'cluster' && this.prefix.includes('{')) {
      options.events?.emit({ name: EventName.cacheMisconfigured, backend: this.backend, problem: 'cluster_key_prefix_hash_tag' });
    }
  }

  /** Connect (see RedisConnections.start): never rejects, an unreachable Redis is retried in the background. */
  start(): Promise<void> {
    // the near cache arms itself on its connections' 'ready' events (its listeners are attached already)
    return this.connections.start();
  }

  /** The near cache's counters and size; undefined when it is off. */
  nearCacheStats(): NearCacheStats | undefined {
    const near = this.near;
    if (near === undefined) return undefined;
    return { ...near.counters, armed: near.isArmed, ...near.size };
  }

  /** True when the primary connection can take commands. */
  isReady(): boolean {
    return this.connections.isReady();
  }

  /** Called with true when the primary becomes ready, false when it loses its connection. Returns an unsubscribe. */
  onReadyChange(listener: (ready: boolean) => void): () => void {
    return this.connections.onReadyChange(listener);
  }

  /** The fail-fast request-path connection (for short leases on the same Redis, e.g. coalescing). */
  get client(): Redis | Cluster {
    return this.writer;
  }

  async lookup(key: string, sealKey?: Uint8Array, resourceKey?: string): Promise<CachedEntry | undefined> {
    const near = this.near;
    if (this.shared !== undefined && resourceKey !== undefined) {
      const name = this.admittedName('lookup', this.shared.entryName(key, resourceKey));
      // the near cache: a copy of what this key returned, unchanged since (Redis would have said)
      const held = near?.get(name, sealKey);
      if (held !== undefined) return held;
      // armed: read on the tracked connection, with a ticket an invalidation before the reply voids
      const ticket = near !== undefined ? near.begin() : -1;
      const client = ticket >= 0 && this.nearReads !== undefined ? this.nearReads : this.connections.forReads();
      const sentAt = ticket >= 0 ? this.clock.now() : 0;
      let found;
      try {
        found = await this.shared.lookup(client, key, resourceKey, sealKey);
      } catch (err) {
        near?.settle(ticket);
        this.connections.readFailed(client);
        throw this.failure('lookup', err, name);
      }
      this.connections.answered(name);
      if (ticket >= 0 && near !== undefined) {
        if (found.found && found.tracked) near.keep(ticket, name, sealKey, found.entry, entryBytes(found.entry), sentAt, found.ttlMs, found.bodyName);
        near.settle(ticket);
      }
      if (found.found) return found.entry;
      if ('corrupt' in found) this.options.events?.emit({ name: EventName.cacheCorrupt, backend: this.backend, reason: found.corrupt.reason });
      return undefined;
    }
    const full = this.admitted('lookup', key);
    const held = near?.get(full, sealKey);
    if (held !== undefined) return held;
    const ticket = near !== undefined ? near.begin() : -1;
    const client = ticket >= 0 && this.nearReads !== undefined ? this.nearReads : this.connections.forReads();
    const sentAt = ticket >= 0 ? this.clock.now() : 0;
    let value: Buffer | null;
    let ttlMs = -2;
    try {
      if (ticket >= 0) {
        const reply = await (client as unknown as NearGetCommand).ghmNearGetBuffer(full);
        value = reply === null ? null : reply[0];
        if (reply !== null) ttlMs = reply[1];
      } else {
        value = await client.getBuffer(full);
      }
    } catch (err) {
      near?.settle(ticket);
      this.connections.readFailed(client);
      throw this.failure('lookup', err, full);
    }
    this.connections.answered(full);
    if (value === null) {
      near?.settle(ticket);
      return undefined;
    }
    const memo = this.decoded.get(key, value, sealKey);
    if (memo !== undefined) {
      if (near !== undefined && ticket >= 0) {
        near.keep(ticket, full, sealKey, memo, value.byteLength + memo.body.byteLength, sentAt, ttlMs);
        near.settle(ticket);
      }
      return memo;
    }
    const decoded = readValue(value, key, sealKey);
    if (decoded.ok) {
      this.decoded.set(key, value, sealKey, decoded.entry, decoded.entry.body.byteLength);
      if (near !== undefined && ticket >= 0) {
        near.keep(ticket, full, sealKey, decoded.entry, value.byteLength + decoded.entry.body.byteLength, sentAt, ttlMs);
        near.settle(ticket);
      }
      return decoded.entry;
    }
    near?.settle(ticket);
    this.options.events?.emit({ name: EventName.cacheCorrupt, backend: this.backend, reason: decoded.error.reason, bytes: value.length });
    return undefined;
  }

  async store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void> {
    if (!(ttlSeconds > 0)) return this.forget(key, resourceKey);
    const ttlMs = Math.max(1, Math.round(ttlSeconds * 1000));
    if (this.shared !== undefined && resourceKey !== undefined) {
      const name = this.admittedName('store', this.shared.entryName(key, resourceKey));
      // our own write: the near copy goes at once, and again once Redis has it (a lookup sent meanwhile
      // on the other connection may have read the old value)
      this.near?.invalidate(name);
      try {
        await this.shared.store(this.writer, key, resourceKey, entry, ttlMs, sealKey);
      } catch (err) {
        throw this.failure('store', err, name);
      } finally {
        this.near?.invalidate(name);
      }
      this.connections.answered(name);
      return;
    }
    const value = writeValue(entry, key, sealKey, this.options.codec);
    const full = this.admitted('store', key);
    this.near?.invalidate(full);
    try {
      await this.writer.set(full, value, 'PX', ttlMs);
    } catch (err) {
      throw this.failure('store', err, full);
    } finally {
      this.near?.invalidate(full);
    }
    this.connections.answered(full);
  }

  async forget(key: string, resourceKey?: string): Promise<void> {
    const shared = this.shared !== undefined && resourceKey !== undefined ? this.shared : undefined;
    const full = shared !== undefined && resourceKey !== undefined ? this.admittedName('forget', shared.entryName(key, resourceKey)) : this.admitted('forget', key);
    this.near?.invalidate(full);
    try {
      if (shared !== undefined && resourceKey !== undefined) await shared.forget(this.writer, key, resourceKey);
      else await this.writer.del(full);
    } catch (err) {
      throw this.failure('forget', err, full);
    } finally {
      this.near?.invalidate(full);
    }
    this.connections.answered(full);
  }

  async representations(resourceKey: string, limit: number): Promise<readonly StoredRepresentation[]> {
    if (this.shared === undefined) return [];
    const client = this.connections.forReads();
    const name = this.admittedName('representations', this.shared.indexName(resourceKey));
    try {
      const found = await this.shared.representations(client, resourceKey, limit);
      this.connections.answered(name);
      return found;
    } catch (err) {
      this.connections.readFailed(client);
      throw this.failure('representations', err, name);
    }
  }

  /**
   * Size of the Redis database(s) behind this cache: DBSIZE and `used_memory_dataset`, summed over
   * the masters of a cluster. This counts every key of the logical database, not only ours: give the
   * mirror its own database (or accept the approximation); counting by prefix needs a full SCAN.
   */
  async stats(): Promise<CacheStats> {
    try {
      const nodes: Redis[] = this.topology === 'cluster' ? (this.writer as Cluster).nodes('master') : [this.writer as Redis];
      const perNode = await Promise.all(
        nodes.map(async (node) => {
          const [entries, info, sample] = await Promise.all([node.dbsize(), node.info('memory'), this.sampleLayout(node)]);
          return { entries, bytes: parseUsedMemory(info), sampledEntries: sample.entries * entries, sampledBodies: sample.bodies * entries };
        }),
      );
      const sum = perNode.reduce(
        (a, b) => ({ entries: a.entries + b.entries, bytes: a.bytes + b.bytes, sampledEntries: a.sampledEntries + b.sampledEntries, sampledBodies: a.sampledBodies + b.sampledBodies }),
        { entries: 0, bytes: 0, sampledEntries: 0, sampledBodies: 0 },
      );
      const stats: CacheStats = { entries: sum.entries, bytes: sum.bytes };
      if (this.shared !== undefined) stats.layout = { entries: Math.round(sum.sampledEntries), bodies: Math.round(sum.sampledBodies), estimated: true };
      return stats;
    } catch (err) {
      throw this.failure('stats', err);
    }
  }

  /**
   * The fractions of a node's keys that are credentials' entries and shared bodies, from RANDOMKEY
   * (counting them exactly needs a full SCAN). Zeros without the shared layout.
   */
  private async sampleLayout(node: Redis): Promise<{ entries: number; bodies: number }> {
    if (this.shared === undefined) return { entries: 0, bodies: 0 };
    const pipeline = node.pipeline();
    for (let i = 0; i < LAYOUT_SAMPLE; i += 1) pipeline.randomkey();
    const replies = (await pipeline.exec()) ?? [];
    let entries = 0;
    let bodies = 0;
    let seen = 0;
    for (const [error, key] of replies) {
      if (error !== null || typeof key !== 'string') continue;
      seen += 1;
      const kind = key.startsWith(this.prefix) ? parseSharedName(key.slice(this.prefix.length))?.kind : undefined;
      if (kind === 'entry') entries += 1;
      else if (kind === 'body') bodies += 1;
    }
    return seen === 0 ? { entries: 0, bodies: 0 } : { entries: entries / seen, bodies: bodies / seen };
  }

  /** Quit every connection (disconnect when it does not answer) and stop reconnecting. */
  async close(): Promise<void> {
    this.tracking?.close();
    this.decoded.clear();
    this.shared?.clear();
    await this.connections.close();
  }

  /** The prefixed key, or a failure at once when its cluster master is known not to answer. */
  private admitted(operation: Operation, key: string): string {
    return this.admittedName(operation, this.prefix + key);
  }

  /** A full key name (prefix included) whose slot answers, or the failure of its operation. */
  private admittedName(operation: Operation, full: string): string {
    if (!this.connections.admits(full)) throw this.failure(operation, new Error(SLOT_UNREACHABLE));
    return full;
  }

  private failure(operation: Operation, err: unknown, key?: string): MirrorError {
    if (key !== undefined) this.connections.commandFailed(key, err);
    const code = redisErrorCode(err);
    const message = errorSummary(err);
    this.options.events?.emit({ name: EventName.cacheError, backend: this.backend, operation, code, message });
    return new MirrorError(ErrorCode.CACHE_UNAVAILABLE, `redis ${operation} failed (${code}): ${message}`, { cause: err });
  }
}

/** What a near copy of a joined entry holds: its body and headers (the body is shared with the body memo; counted anyway). */
function entryBytes(entry: CachedEntry): number {
  let bytes = entry.body.byteLength;
  for (const name in entry.headers) bytes += name.length + (entry.headers[name]?.length ?? 0);
  return bytes;
}

/** Bytes of raw values and decoded bodies kept by the decode memo. */
const DECODED_MEMO_BYTES = 16 * 1024 * 1024;

function parseUsedMemory(info: string): number {
  const dataset = /^used_memory_dataset:(\d+)/m.exec(info);
  if (dataset !== null) return Number(dataset[1]);
  const used = /^used_memory:(\d+)/m.exec(info);
  return used === null ? 0 : Number(used[1]);
}
