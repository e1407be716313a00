/**
 * CachePort over Redis (ioredis): standalone with an optional reader endpoint, Sentinel, or Cluster.
 *
 * One round trip per operation: lookup = GET (Buffer), store = SET key value PX ttl, forget = DEL.
 * Key = keyPrefix + key. Values are `entry-codec` bytes, sealed with AES-256-GCM when the caller
 * passes a seal key (the cache key is the additional authenticated data, so a value moved under
 * another key does not open). A value that does not open or decode is a miss and a `cache.corrupt`
 * event, never an error; with a seal key an unsealed value is refused (it could be forged). A failed command rejects at once (no offline queue, a
 * command timeout) with MirrorError CACHE_UNAVAILABLE, so the breaker in front of this adapter can
 * fall back to memory. `start()` never throws: an unreachable Redis is retried in the background.
 */
import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { ErrorCode, MirrorError } from '../../../domain/errors.js';
import { EventName } from '../../../domain/events/events.js';
import type { DomainEvent } from '../../../domain/events/events.js';
import type { CachedEntry } from '../../../domain/model.js';
import type { CachePort, CacheStatsPort } from '../../../domain/ports/cache.port.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';
import type { EventBusPort } from '../../../domain/ports/event-bus.port.js';
import type { EncodeOptions } from '../entry-codec.js';
import { readValue, writeValue } from '../sealed-value.js';
import { createRedisClients, reconnectDelay, type RedisConnectionOptions, type RedisTopology } from './redis-client.js';

/** pino-compatible subset. */
export interface AdapterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisCacheOptions extends RedisConnectionOptions {
  /** Prepended to every key ("ghm:v1:"). In a cluster it must not contain `{`, or every key lands in one slot. */
  keyPrefix: string;
  events?: EventBusPort;
  logger?: AdapterLogger;
  clock?: ClockPort;
  /** Body compression settings of the codec (defaults from the measurement in docs/redis.md). */
  codec?: EncodeOptions;
  /** Connection errors are logged at most once per this interval, with a count of the others. Default 10 s. */
  errorLogIntervalMs?: number;
  /** `start()` waits at most this long for the first connection. Default max(2000, connectTimeoutMs). */
  startTimeoutMs?: number;
}

type Operation = 'lookup' | 'store' | 'forget' | 'stats';

/** Classify an ioredis failure into a stable code for events (no message parsing by listeners). */
export function redisErrorCode(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const name = err instanceof Error ? err.name : '';
  if (message.includes('Command timed out')) return 'REDIS_TIMEOUT';
  if (
    message.includes("isn't writeable") ||
    message.includes('enableOfflineQueue') ||
    message.includes('Connection is closed') ||
    message.includes("isn't ready") ||
    message.includes('Cluster is ended') ||
    name === 'MaxRetriesPerRequestError'
  ) {
    return 'REDIS_UNAVAILABLE';
  }
  if (name === 'ReplyError') return 'REDIS_REPLY';
  return 'REDIS_ERROR';
}

const noopLogger: AdapterLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Logs the first error at once, then at most one line per interval with how many were suppressed. */
class ThrottledErrorLog {
  private lastAt = -Infinity;
  private suppressed = 0;
  constructor(
    private readonly logger: AdapterLogger,
    private readonly clock: ClockPort,
    private readonly intervalMs: number,
  ) {}

  log(fields: object, msg: string): void {
    const now = this.clock.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    this.logger.warn({ ...fields, suppressed: this.suppressed }, msg);
    this.lastAt = now;
    this.suppressed = 0;
  }
}

export class RedisCache implements CachePort, CacheStatsPort {
  readonly backend = 'redis';
  readonly topology: RedisTopology;
  /** Where it points, without credentials. */
  readonly description: string;
  private readonly writer: Redis | Cluster;
  private readonly reader: Redis | undefined;
  private readonly prefix: string;
  private readonly logger: AdapterLogger;
  private readonly clock: ClockPort;
  private readonly readiness = new EventEmitter();
  private readonly errorLog: ThrottledErrorLog;
  private ready = false;
  private started = false;
  private closed = false;
  /** After a reader failure, lookups use the writer until this time. */
  private readerSuspendedUntil = 0;
  /** Timers that restart a connection ioredis gave up on (see `revive`). */
  private readonly reviveTimers = new Set<NodeJS.Timeout>();
  /**
   * The last decoded entries, by key, with the exact bytes they came from: a hit whose value has not
   * changed skips opening and decompressing it (the hot path is one GET and a byte comparison).
   */
  private readonly decoded = new Map<string, { raw: Buffer; sealKey: Uint8Array | undefined; entry: CachedEntry }>();
  private decodedBytes = 0;

  constructor(private readonly options: RedisCacheOptions) {
    if (typeof options.keyPrefix !== 'string') throw new TypeError('RedisCache: keyPrefix is required (may be "")');
    if (!Number.isFinite(options.commandTimeoutMs) || options.commandTimeoutMs <= 0) {
      throw new RangeError('RedisCache: commandTimeoutMs must be a positive number');
    }
    const clients = createRedisClients(options);
    this.topology = clients.topology;
    this.description = clients.description;
    this.writer = clients.writer;
    this.reader = clients.reader;
    this.prefix = options.keyPrefix;
    this.logger = options.logger ?? noopLogger;
    this.clock = options.clock ?? systemClock;
    this.errorLog = new ThrottledErrorLog(this.logger, this.clock, options.errorLogIntervalMs ?? 10000);
    if (this.topology === 'cluster' && this.prefix.includes('{')) {
      this.logger.warn({ backend: this.backend }, 'redis key prefix contains "{": in a cluster every key would hash to one slot');
    }
    this.attach(this.writer, 'primary');
    if (this.reader !== undefined) this.attach(this.reader, 'reader');
  }

  /**
   * Connect. Resolves once every connection is ready, has failed its first attempt, or after
   * `startTimeoutMs`; never rejects. Unreachable endpoints are retried in the background (see
   * `isReady`, `onReadyChange`).
   */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    const waitMs = this.options.startTimeoutMs ?? Math.max(2000, this.options.connectTimeoutMs ?? 0);
    const connect = async (client: Redis | Cluster, role: string): Promise<void> => {
      const notReachable = (err: unknown): void => {
        this.logger.warn(
          { backend: this.backend, role, endpoint: this.description, err: errorSummary(err) },
          'redis not reachable at start; serving without it and reconnecting in the background',
        );
      };
      let timer: NodeJS.Timeout | undefined;
      // with every sentinel down, ioredis' connect() keeps retrying and never settles: bound the wait
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), waitMs);
        timer.unref();
      });
      const attempt = client.connect().then(
        () => 'connected' as const,
        (err: unknown) => {
          notReachable(err);
          return 'failed' as const;
        },
      );
      const outcome = await Promise.race([attempt, timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') notReachable(new Error(`not ready after ${waitMs} ms`));
    };
    const pending = [connect(this.writer, 'primary')];
    if (this.reader !== undefined) pending.push(connect(this.reader, 'reader'));
    await Promise.all(pending);
    // ioredis emits 'ready' on a later tick: tell the listeners now, so that a breaker following
    // this cache closes before the first call that comes right after start()
    this.setReady(this.isReady());
  }

  /** True when the primary connection can take commands. */
  isReady(): boolean {
    return !this.closed && this.writer.status === 'ready';
  }

  /** Called with true when the primary becomes ready, false when it loses its connection. Returns an unsubscribe. */
  /** The fail-fast request-path connection (for short leases on the same Redis, e.g. coalescing). */
  get client(): Redis | Cluster {
    return this.writer;
  }

  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.readiness.on('change', listener);
    return () => {
      this.readiness.off('change', listener);
    };
  }

  async lookup(key: string, sealKey?: Uint8Array): Promise<CachedEntry | undefined> {
    const client = this.readClient();
    let value: Buffer | null;
    try {
      value = await client.getBuffer(this.prefix + key);
    } catch (err) {
      if (client === this.reader) this.readerSuspendedUntil = this.clock.now() + 1000;
      throw this.failure('lookup', err);
    }
    if (value === null) return undefined;
    const memo = this.decoded.get(key);
    if (memo !== undefined && memo.raw.equals(value) && sameKey(memo.sealKey, sealKey)) return memo.entry;
    const decoded = readValue(value, key, sealKey);
    if (decoded.ok) {
      this.remember(key, value, sealKey, decoded.entry);
      return decoded.entry;
    }
    this.emit({ name: EventName.cacheCorrupt, backend: this.backend, reason: decoded.error.reason });
    this.logger.warn({ backend: this.backend, reason: decoded.error.reason, bytes: value.length }, 'unreadable cache entry treated as a miss');
    return undefined;
  }

  async store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array): Promise<void> {
    if (!(ttlSeconds > 0)) return this.forget(key);
    const value = writeValue(entry, key, sealKey, this.options.codec);
    const ttlMs = Math.max(1, Math.round(ttlSeconds * 1000));
    try {
      await this.writer.set(this.prefix + key, value, 'PX', ttlMs);
    } catch (err) {
      throw this.failure('store', err);
    }
  }

  async forget(key: string): Promise<void> {
    try {
      await this.writer.del(this.prefix + key);
    } catch (err) {
      throw this.failure('forget', err);
    }
  }

  /**
   * Size of the Redis database(s) behind this cache: DBSIZE and `used_memory_dataset`, summed over
   * the masters of a cluster. This counts every key of the logical database, not only ours: give the
   * mirror its own database (or accept the approximation); counting by prefix needs a full SCAN.
   */
  async stats(): Promise<{ entries: number; bytes: number }> {
    try {
      const nodes: Redis[] = this.topology === 'cluster' ? (this.writer as Cluster).nodes('master') : [this.writer as Redis];
      const perNode = await Promise.all(
        nodes.map(async (node) => {
          const [entries, info] = await Promise.all([node.dbsize(), node.info('memory')]);
          return { entries, bytes: parseUsedMemory(info) };
        }),
      );
      return perNode.reduce((a, b) => ({ entries: a.entries + b.entries, bytes: a.bytes + b.bytes }), { entries: 0, bytes: 0 });
    } catch (err) {
      throw this.failure('stats', err);
    }
  }

  /** Quit every connection (disconnect when it does not answer) and stop reconnecting. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.decoded.clear();
    this.decodedBytes = 0;
    for (const timer of this.reviveTimers) clearTimeout(timer);
    this.reviveTimers.clear();
    const quit = async (client: Redis | Cluster): Promise<void> => {
      if (client.status === 'ready') {
        try {
          await client.quit();
        } catch (err) {
          this.logger.warn({ backend: this.backend, err: errorSummary(err) }, 'redis quit failed; disconnecting');
        }
      }
      client.disconnect();
    };
    const pending = [quit(this.writer)];
    if (this.reader !== undefined) pending.push(quit(this.reader));
    await Promise.all(pending);
    this.setReady(false);
    this.readiness.removeAllListeners();
  }

  private remember(key: string, raw: Buffer, sealKey: Uint8Array | undefined, entry: CachedEntry): void {
    const previous = this.decoded.get(key);
    if (previous !== undefined) {
      this.decoded.delete(key);
      this.decodedBytes -= previous.raw.byteLength + previous.entry.body.byteLength;
    }
    const size = raw.byteLength + entry.body.byteLength;
    if (size > DECODED_MEMO_BYTES / 16) return;
    this.decoded.set(key, { raw, sealKey, entry });
    this.decodedBytes += size;
    for (const [oldest, slot] of this.decoded) {
      if (this.decodedBytes <= DECODED_MEMO_BYTES) break;
      this.decoded.delete(oldest);
      this.decodedBytes -= slot.raw.byteLength + slot.entry.body.byteLength;
    }
  }

  private readClient(): Redis | Cluster {
    const reader = this.reader;
    if (reader !== undefined && reader.status === 'ready' && this.clock.now() >= this.readerSuspendedUntil) return reader;
    return this.writer;
  }

  private attach(client: Redis | Cluster, role: 'primary' | 'reader'): void {
    let wasReady = false;
    // an 'error' listener always: without one, ioredis errors would crash the process
    client.on('error', (err: unknown) => {
      if (this.closed) return;
      this.errorLog.log({ backend: this.backend, role, endpoint: this.description, err: errorSummary(err) }, 'redis connection error');
    });
    if ('nodes' in client) {
      client.on('node error', (err: unknown, node: unknown) => {
        if (this.closed) return;
        this.errorLog.log({ backend: this.backend, role, node: String(node), err: errorSummary(err) }, 'redis cluster node error');
      });
    }
    let revivals = 0;
    client.on('ready', () => {
      if (this.closed) return;
      wasReady = true;
      revivals = 0;
      this.logger.info({ backend: this.backend, role, endpoint: this.description, topology: this.topology }, 'redis ready');
      if (role === 'primary') this.setReady(true);
    });
    const lost = (): void => {
      if (this.closed) return;
      if (wasReady) {
        wasReady = false;
        this.logger.warn({ backend: this.backend, role, endpoint: this.description }, 'redis connection lost; reconnecting');
      }
      if (role === 'primary') this.setReady(false);
    };
    client.on('close', lost);
    client.on('end', () => {
      lost();
      if (this.closed || !this.started) return;
      // ioredis ends a connection for good in a few races (a Sentinel failover noticed by its failover
      // detector while it is already reconnecting ends it with "Connection is closed."): start over
      revivals += 1;
      this.revive(client, role, revivals);
    });
  }

  private revive(client: Redis | Cluster, role: string, attempt: number): void {
    const timer = setTimeout(() => {
      this.reviveTimers.delete(timer);
      if (this.closed || client.status !== 'end') return;
      this.logger.info({ backend: this.backend, role, endpoint: this.description, attempt }, 'redis connection ended; connecting again');
      client.connect().catch((err: unknown) => {
        this.errorLog.log({ backend: this.backend, role, endpoint: this.description, err: errorSummary(err) }, 'redis reconnect failed');
      });
    }, reconnectDelay(attempt, this.options.maxReconnectDelayMs ?? 2000));
    timer.unref();
    this.reviveTimers.add(timer);
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.readiness.emit('change', ready);
  }

  private failure(operation: Operation, err: unknown): MirrorError {
    const code = redisErrorCode(err);
    const message = errorSummary(err);
    this.emit({ name: EventName.cacheError, backend: this.backend, operation, code, message });
    return new MirrorError(ErrorCode.CACHE_UNAVAILABLE, `redis ${operation} failed (${code}): ${message}`, { cause: err });
  }

  private emit(event: DomainEvent): void {
    if (this.options.events === undefined) return;
    try {
      this.options.events.emit(event);
    } catch (err) {
      this.logger.error({ backend: this.backend, event: event.name, err: errorSummary(err) }, 'event listener failed');
    }
  }
}

/** Bytes of raw values and decoded bodies kept by the decode memo. */
const DECODED_MEMO_BYTES = 16 * 1024 * 1024;

function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** An error's message, bounded (ioredis messages hold host:port at most, never credentials). */
function errorSummary(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

function parseUsedMemory(info: string): number {
  const dataset = /^used_memory_dataset:(\d+)/m.exec(info);
  if (dataset !== null) return Number(dataset[1]);
  const used = /^used_memory:(\d+)/m.exec(info);
  return used === null ? 0 : Number(used[1]);
}
