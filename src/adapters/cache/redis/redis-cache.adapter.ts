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

export interface RedisCacheOptions extends RedisSupervisionOptions {
  /** Prepended to every key ("ghm:v1:"). In a cluster it must not contain `{`, or every key lands in one slot. */
  keyPrefix: string;
  /** Receives cache.error, cache.corrupt, cache.misconfigured and the connections' events. */
  events?: EventBusPort;
  /** Body compression settings of the codec (defaults from the measurement in docs/redis.md). */
  codec?: EncodeOptions;
  /** Keys of the shared layout (cache.shareAcrossCredentials); without them resource keys are ignored. */
  bodyKeys?: BodyKeys;
}

type Operation = 'lookup' | 'store' | 'forget' | 'representations' | 'stats';

/** Keys sampled per master (RANDOMKEY) to estimate the shared layout's entries and bodies. */
const LAYOUT_SAMPLE = 64;

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

  constructor(private readonly options: RedisCacheOptions) {
    if (typeof options.keyPrefix !== 'string') throw new TypeError('RedisCache: keyPrefix is required (may be "")');
    if (!Number.isFinite(options.commandTimeoutMs) || options.commandTimeoutMs <= 0) {
      throw new RangeError('RedisCache: commandTimeoutMs must be a positive number');
    }
    this.connections = new RedisConnections(options);
    this.topology = this.connections.topology;
    this.description = this.connections.description;
    this.writer = this.connections.writer;
    this.prefix = options.keyPrefix;
    if (options.bodyKeys !== undefined) {
      const sharedOptions = { prefix: this.prefix, keys: options.bodyKeys, ...(options.codec ? { codec: options.codec } : {}) };
      this.shared = new RedisSharedBodies(sharedOptions);
      defineSharedCommands(this.writer);
      if (this.connections.reader !== undefined) defineSharedCommands(this.connections.reader);
    }
    if (this.topology === 'cluster' && this.prefix.includes('{')) {
      options.events?.emit({ name: EventName.cacheMisconfigured, backend: this.backend, problem: 'cluster_key_prefix_hash_tag' });
    }
  }

  /** Connect (see RedisConnections.start): never rejects, an unreachable Redis is retried in the background. */
  start(): Promise<void> {
    return this.connections.start();
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
    const client = this.connections.forReads();
    if (this.shared !== undefined && resourceKey !== undefined) {
      const name = this.admittedName('lookup', this.shared.entryName(key, resourceKey));
      let found;
      try {
        found = await this.shared.lookup(client, key, resourceKey, sealKey);
      } catch (err) {
        this.connections.readFailed(client);
        throw this.failure('lookup', err, name);
      }
      this.connections.answered(name);
      if (found.found) return found.entry;
      if ('corrupt' in found) this.options.events?.emit({ name: EventName.cacheCorrupt, backend: this.backend, reason: found.corrupt.reason });
      return undefined;
    }
    const full = this.admitted('lookup', key);
    let value: Buffer | null;
    try {
      value = await client.getBuffer(full);
    } catch (err) {
      this.connections.readFailed(client);
      throw this.failure('lookup', err, full);
    }
    this.connections.answered(full);
    if (value === null) return undefined;
    const memo = this.decoded.get(key, value, sealKey);
    if (memo !== undefined) return memo;
    const decoded = readValue(value, key, sealKey);
    if (decoded.ok) {
      this.decoded.set(key, value, sealKey, decoded.entry, decoded.entry.body.byteLength);
      return decoded.entry;
    }
    this.options.events?.emit({ name: EventName.cacheCorrupt, backend: this.backend, reason: decoded.error.reason, bytes: value.length });
    return undefined;
  }

  async store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void> {
    if (!(ttlSeconds > 0)) return this.forget(key, resourceKey);
    const ttlMs = Math.max(1, Math.round(ttlSeconds * 1000));
    if (this.shared !== undefined && resourceKey !== undefined) {
      const name = this.admittedName('store', this.shared.entryName(key, resourceKey));
      try {
        await this.shared.store(this.writer, key, resourceKey, entry, ttlMs, sealKey);
      } catch (err) {
        throw this.failure('store', err, name);
      }
      this.connections.answered(name);
      return;
    }
    const value = writeValue(entry, key, sealKey, this.options.codec);
    const full = this.admitted('store', key);
    try {
      await this.writer.set(full, value, 'PX', ttlMs);
    } catch (err) {
      throw this.failure('store', err, full);
    }
    this.connections.answered(full);
  }

  async forget(key: string, resourceKey?: string): Promise<void> {
    const shared = this.shared !== undefined && resourceKey !== undefined ? this.shared : undefined;
    const full = shared !== undefined && resourceKey !== undefined ? this.admittedName('forget', shared.entryName(key, resourceKey)) : this.admitted('forget', key);
    try {
      if (shared !== undefined && resourceKey !== undefined) await shared.forget(this.writer, key, resourceKey);
      else await this.writer.del(full);
    } catch (err) {
      throw this.failure('forget', err, full);
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

/** Bytes of raw values and decoded bodies kept by the decode memo. */
const DECODED_MEMO_BYTES = 16 * 1024 * 1024;

function parseUsedMemory(info: string): number {
  const dataset = /^used_memory_dataset:(\d+)/m.exec(info);
  if (dataset !== null) return Number(dataset[1]);
  const used = /^used_memory:(\d+)/m.exec(info);
  return used === null ? 0 : Number(used[1]);
}
