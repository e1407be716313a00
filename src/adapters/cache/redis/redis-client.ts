/**
 * The ioredis clients of one Redis deployment (settings: redis-settings.ts) and `RedisConnections`,
 * which supervises them: connect without ever throwing, readiness, restart of a connection ioredis
 * gave up on, the reader for lookups, a cluster's lost masters and down state (cluster-health.ts),
 * close; each change is reported as a domain event. Nothing here logs or returns a password.
 */
import { EventEmitter } from 'node:events';
import { Cluster, Redis } from 'ioredis';
import { EventName, type CacheConnectionErrorEvent, type CacheConnectionEvent, type CacheConnectionRole } from '../../../domain/events/events.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import type { EventBusPort } from '../../../domain/ports/event-bus.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';
import { planRedisClients, reconnectDelay, type RedisConnectionOptions, type RedisTopology } from './redis-settings.js';
import { ClusterHealth, type ClusterHealthChange } from './cluster-health.js';

export type { HostPort, RedisConnectionOptions, RedisTopology } from './redis-settings.js';

export interface RedisClients {
  topology: RedisTopology;
  /** Writes (and reads when there is no reader). */
  writer: Redis | Cluster;
  /** Lookups, when a reader endpoint is configured. */
  reader?: Redis;
  /** Where it points, without credentials ("redis://10.0.0.1:6379", "sentinel mymaster@h:26379,..."). */
  description: string;
}

/** Build (not connect) the clients for the configured topology. */
export function createRedisClients(options: RedisConnectionOptions): RedisClients {
  const plan = planRedisClients(options);
  if (plan.topology === 'cluster') return { topology: plan.topology, writer: new Cluster(plan.nodes, plan.cluster), description: plan.description };
  const clients: RedisClients = { topology: plan.topology, writer: new Redis(plan.writer), description: plan.description };
  if (plan.reader !== undefined) clients.reader = new Redis(plan.reader);
  return clients;
}

export interface RedisSupervisionOptions extends RedisConnectionOptions {
  /** `start()` waits at most this long for the first connection. Default max(2000, connectTimeoutMs). */
  startTimeoutMs?: number;
  /** Receives `cache.connection` and `cache.connection_error`. */
  events?: EventBusPort;
  clock?: ClockPort;
  /**
   * Also open the near cache's two connections to the writer's endpoint (standalone or Sentinel):
   * `nearReads` (tracked lookups) and `nearInvalidations` (the subscriber). Ignored for a cluster.
   */
  nearConnections?: boolean;
}

type Role = CacheConnectionRole;
type ConnectionChange = Omit<CacheConnectionEvent, 'name' | 'backend' | 'role' | 'endpoint'>;
type ConnectionError = Omit<CacheConnectionErrorEvent, 'name' | 'backend' | 'role' | 'endpoint'>;

const BACKEND = 'redis';

/**
 * The clients of one Redis deployment, supervised: `start()` connects them without ever throwing,
 * every state change becomes a `cache.connection` event (failures `cache.connection_error`), a
 * connection ioredis ends for good while open is started again, and lookups are pointed at the
 * reader while it answers.
 */
export class RedisConnections {
  readonly topology: RedisTopology;
  /** Where it points, without credentials. */
  readonly description: string;
  /** Writes (and reads when there is no reader): the fail-fast request-path connection. */
  readonly writer: Redis | Cluster;
  readonly reader: Redis | undefined;
  /** The near cache's tracked lookups and its invalidation subscriber (`nearConnections`), same endpoint as the writer. */
  readonly nearReads: Redis | undefined;
  readonly nearInvalidations: Redis | undefined;
  private readonly clock: ClockPort;
  private readonly readiness = new EventEmitter();
  private ready = false;
  private started = false;
  private closed = false;
  /** After a reader failure, lookups use the writer until this time. */
  private readerSuspendedUntil = 0;
  /** Timers that restart a connection ioredis gave up on (see `revive`). */
  private readonly reviveTimers = new Set<NodeJS.Timeout>();
  /** Cluster only: masters that stopped answering, and the cluster's down state. */
  private readonly cluster: ClusterHealth | undefined;

  constructor(private readonly options: RedisSupervisionOptions) {
    const clients = createRedisClients(options);
    this.topology = clients.topology;
    this.description = clients.description;
    this.writer = clients.writer;
    this.reader = clients.reader;
    this.clock = options.clock ?? systemClock;
    this.attach(this.writer, 'primary');
    if (this.reader !== undefined) this.attach(this.reader, 'reader');
    if (options.nearConnections === true && !('nodes' in this.writer)) {
      // same settings as the writer (fail fast, Sentinel, TLS, credentials); the subscriber subscribes itself on each 'ready'
      this.nearReads = this.writer.duplicate();
      this.nearInvalidations = this.writer.duplicate({ autoResubscribe: false });
      this.attach(this.nearReads, 'near_reads');
      this.attach(this.nearInvalidations, 'near_invalidations');
    }
    if ('nodes' in this.writer) {
      this.cluster = new ClusterHealth(this.writer, { clock: this.clock, onChange: (change) => this.clusterChanged(change) });
    }
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
    const connect = async (client: Redis | Cluster, role: Role): Promise<void> => {
      const notReachable = (err: unknown): void => this.changed(role, { state: 'unreachable', message: errorSummary(err) });
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
    if (this.nearReads !== undefined) pending.push(connect(this.nearReads, 'near_reads'));
    if (this.nearInvalidations !== undefined) pending.push(connect(this.nearInvalidations, 'near_invalidations'));
    await Promise.all(pending);
    // ioredis emits 'ready' on a later tick: tell the listeners now, so that a breaker following
    // this cache closes before the first call that comes right after start()
    this.setReady(this.isReady());
  }

  /** True when the primary connection can take commands (and a cluster does not say it is down). */
  isReady(): boolean {
    return !this.closed && this.writer.status === 'ready' && this.cluster?.isDown !== true;
  }

  /** False when a command for this (prefixed) key would wait for a cluster master known not to answer: fail it at once. */
  admits(key: string): boolean {
    return this.cluster === undefined || this.cluster.admits(key);
  }

  /** A command for this (prefixed) key was answered. */
  answered(key: string): void {
    this.cluster?.answered(key);
  }

  /** A command for this (prefixed) key failed: a cluster marks its master unreachable, or itself down. */
  commandFailed(key: string, err: unknown): void {
    this.cluster?.failed(key, err);
  }

  /** Called with true when the primary becomes ready, false when it loses its connection. Returns an unsubscribe. */
  onReadyChange(listener: (ready: boolean) => void): () => void {
    this.readiness.on('change', listener);
    return () => {
      this.readiness.off('change', listener);
    };
  }

  /** The connection for a lookup: the reader while it answers, else the writer. */
  forReads(): Redis | Cluster {
    const reader = this.reader;
    if (reader !== undefined && reader.status === 'ready' && this.clock.now() >= this.readerSuspendedUntil) return reader;
    return this.writer;
  }

  /** A lookup on `client` failed: when it was the reader, lookups use the writer for the next second. */
  readFailed(client: Redis | Cluster): void {
    if (client === this.reader) this.readerSuspendedUntil = this.clock.now() + 1000;
  }

  /** Quit every connection (disconnect when it does not answer) and stop reconnecting. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cluster?.close();
    for (const timer of this.reviveTimers) clearTimeout(timer);
    this.reviveTimers.clear();
    const quit = async (client: Redis | Cluster, role: Role): Promise<void> => {
      if (client.status === 'ready') {
        try {
          await client.quit();
        } catch (err) {
          this.failed(role, { source: 'quit', message: errorSummary(err) });
        }
      }
      client.disconnect();
    };
    const pending = [quit(this.writer, 'primary')];
    if (this.reader !== undefined) pending.push(quit(this.reader, 'reader'));
    if (this.nearReads !== undefined) pending.push(quit(this.nearReads, 'near_reads'));
    if (this.nearInvalidations !== undefined) pending.push(quit(this.nearInvalidations, 'near_invalidations'));
    await Promise.all(pending);
    this.setReady(false);
    this.readiness.removeAllListeners();
  }

  private attach(client: Redis | Cluster, role: Role): void {
    let wasReady = false;
    // an 'error' listener always: without one, ioredis errors would crash the process
    client.on('error', (err: unknown) => {
      if (!this.closed) this.failed(role, { source: 'connection', message: errorSummary(err) });
    });
    if ('nodes' in client) {
      client.on('node error', (err: unknown, node: unknown) => {
        if (!this.closed) this.failed(role, { source: 'node', node: String(node), message: errorSummary(err) });
      });
    }
    let revivals = 0;
    client.on('ready', () => {
      if (this.closed) return;
      wasReady = true;
      revivals = 0;
      this.changed(role, { state: 'ready', topology: this.topology });
      if (role === 'primary') this.setReady(true);
    });
    const lost = (): void => {
      if (this.closed) return;
      if (wasReady) {
        wasReady = false;
        this.changed(role, { state: 'lost' });
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

  private revive(client: Redis | Cluster, role: Role, attempt: number): void {
    const timer = setTimeout(() => {
      this.reviveTimers.delete(timer);
      if (this.closed || client.status !== 'end') return;
      this.changed(role, { state: 'restarting', attempt });
      client.connect().catch((err: unknown) => this.failed(role, { source: 'reconnect', message: errorSummary(err) }));
    }, reconnectDelay(attempt, this.options.maxReconnectDelayMs ?? 2000));
    timer.unref();
    this.reviveTimers.add(timer);
  }

  private clusterChanged(change: ClusterHealthChange): void {
    if (this.closed) return;
    this.options.events?.emit({ name: EventName.cacheCluster, backend: BACKEND, endpoint: this.description, ...change });
    if (change.state === 'down' || change.state === 'ok') this.setReady(this.isReady());
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    this.readiness.emit('change', ready);
  }

  private changed(role: Role, change: ConnectionChange): void {
    this.options.events?.emit({ name: EventName.cacheConnection, backend: BACKEND, role, endpoint: this.description, ...change });
  }

  private failed(role: Role, failure: ConnectionError): void {
    this.options.events?.emit({ name: EventName.cacheConnectionError, backend: BACKEND, role, endpoint: this.description, ...failure });
  }
}

/** An error's message, bounded (ioredis messages hold host:port at most, never credentials). */
export function errorSummary(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}
