/**
 * Snapshots on a schedule and restore at start (DESIGN §1, issue 4).
 *
 * - Every snapshot.intervalSeconds (±5 % jitter) a replica tries to take a snapshot. With Redis the
 *   replicas share one cache, so a lease in Redis (expiring after 90 % of the interval) lets one
 *   replica per interval do it; with the memory backend each replica snapshots its own cache.
 * - At start, when the cache has lost its data, the newest usable snapshot is restored (with Redis: by
 *   the one replica that gets the restore lease; the others serve meanwhile). "Lost its data" means
 *   empty, or without the mark a finished restore leaves in the cache: a Redis that restarted empty
 *   while replicas kept writing misses into it is restored too, not only one found exactly empty.
 *   While a restore runs at start this replica reports not ready, with progress, in /readyz. With
 *   Redis, a reconnect or an interval that finds the data lost (flushed, failed over to an empty node)
 *   restores instead of snapshotting.
 * - On a graceful stop the memory backend takes a final snapshot (its cache dies with the process);
 *   with Redis a snapshot in progress is abandoned (nothing is committed) and Redis keeps the cache.
 */
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { MirrorConfig } from './config.js';
import type { CacheDumpPort } from '../domain/ports/cache-dump.port.js';
import type { LeasePort } from '../domain/ports/lease.port.js';
import type { SnapshotStorePort } from '../domain/ports/snapshot-store.port.js';
import type { EventBusPort } from '../domain/ports/event-bus.port.js';
import type { ClockPort } from '../domain/ports/clock.port.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import { TakeSnapshot, type TakeSnapshotResult } from '../domain/use-cases/take-snapshot.js';
import { RestoreSnapshot, type RestoreProgress, type RestoreSnapshotResult } from '../domain/use-cases/restore-snapshot.js';
import { MemoryCache } from '../adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump } from '../adapters/snapshot/memory-cache-dump.adapter.js';
import { LocalLease } from '../adapters/lease/local-lease.adapter.js';
import { BlobSnapshotStore } from '../adapters/snapshot/blob-snapshot-store.adapter.js';
import { FileBlobStore } from '../adapters/snapshot/file-blob-store.adapter.js';
import { S3BlobStore } from '../adapters/snapshot/s3-blob-store.adapter.js';
import { RedisCacheDump } from '../adapters/cache/redis/redis-dump.adapter.js';
import { RedisLease } from '../adapters/lease/redis-lease.adapter.js';
import { createRedisClients, type RedisConnectionOptions } from '../adapters/cache/redis/redis-client.js';

/** Injection token of the SnapshotService (registered only when snapshot.store is not none). */
export const SNAPSHOT_SERVICE = Symbol('SnapshotService');

export const SNAPSHOT_LEASE = 'snapshot';
export const RESTORE_LEASE = 'restore';

export interface SnapshotServiceOptions {
  intervalMs: number;
  retain: number;
  /** Restore at start when the cache is empty (default true). */
  restoreOnStart?: boolean;
  /** Take a snapshot in stop() (the memory backend: its cache goes with the process). */
  snapshotOnStop: boolean;
  /** Lease held by the replica that restores, renewed every third of it (default 30 s). */
  restoreLeaseMs?: number;
  /** Fraction of the interval each wait varies by (default 0.05). */
  jitter?: number;
  /** stop() waits this long for a snapshot or restore in progress to notice it should end (default 30 s). */
  stopWaitMs?: number;
}

export interface SnapshotServiceDeps {
  dump: CacheDumpPort;
  store: SnapshotStorePort;
  lease: LeasePort;
  events: EventBusPort;
  clock: ClockPort;
  logger: Logger;
  /** Runs before the first use (connect the dedicated Redis client); a failure is logged, not thrown. */
  open?: () => Promise<void>;
  /** Runs at the end of stop() (close clients). */
  close?: () => Promise<void>;
}

export interface SnapshotReadiness {
  /** false while the restore at start runs: this replica would otherwise answer with misses. */
  ready: boolean;
  store: string;
  backend: string;
  restoring: boolean;
  restore?: RestoreProgress;
  lastSnapshot?: { id: string; ageSeconds: number; entries: number; bytes: number };
}

export class SnapshotService {
  private readonly takeSnapshot: TakeSnapshot;
  private readonly restoreSnapshot: RestoreSnapshot;
  /** Aborted by stop(): a restore in progress ends (what it restored stays). */
  private readonly restoreAbort = new AbortController();
  /** Aborted by stop() unless the final snapshot is wanted: a snapshot in progress commits nothing. */
  private readonly snapshotAbort = new AbortController();
  /** A restore was cut short: the cache holds part of a snapshot, which must not become the newest one. */
  private restoreCutShort = false;
  private timer: NodeJS.Timeout | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private opened: Promise<void> | undefined;
  private restoringAtStart = false;
  private restoring = false;
  private restoreProgress: RestoreProgress | undefined;
  private last: { id: string; takenAt: number; entries: number; bytes: number } | undefined;

  constructor(
    private readonly deps: SnapshotServiceDeps,
    private readonly options: SnapshotServiceOptions,
  ) {
    if (!(options.intervalMs > 0)) throw new RangeError('SnapshotService: intervalMs must be positive');
    this.takeSnapshot = new TakeSnapshot(deps.dump, deps.store, deps.events, deps.clock, { retain: options.retain });
    this.restoreSnapshot = new RestoreSnapshot(deps.dump, deps.store, deps.events, deps.clock);
  }

  get store(): SnapshotStorePort {
    return this.deps.store;
  }

  get dump(): CacheDumpPort {
    return this.deps.dump;
  }

  /** Restores (when the cache lost its data and restoreOnStart), then starts the schedule. Never throws. */
  async start(): Promise<void> {
    await this.open();
    if (this.options.restoreOnStart ?? true) {
      this.restoringAtStart = true;
      try {
        await this.exclusive(() => this.restore('start'));
      } finally {
        this.restoringAtStart = false;
      }
    }
    this.schedule();
  }

  /** Graceful stop: no more ticks; the memory backend takes its final snapshot; clients closed. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.restoreAbort.abort();
    if (!this.options.snapshotOnStop) this.snapshotAbort.abort();
    const settled = await this.settleWithin(this.options.stopWaitMs ?? 30_000);
    if (!settled) {
      this.deps.logger.warn({ store: this.deps.store.name }, 'stop: a snapshot or restore still runs (store or cache not answering); not waiting for it');
    } else if (this.options.snapshotOnStop && this.restoreCutShort) {
      this.deps.logger.warn({ store: this.deps.store.name }, 'no final snapshot: the restore at start was cut short, the cache holds only part of the last snapshot');
    } else if (this.options.snapshotOnStop) {
      const result = await this.exclusive(() => this.snapshot('shutdown'));
      if (result?.outcome === 'failed') this.deps.logger.error({ store: this.deps.store.name, reason: result.reason }, 'final snapshot at shutdown failed');
    }
    try {
      await this.deps.close?.();
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'closing the snapshot clients failed');
    }
  }

  /** True when the work in progress ended within `ms`. */
  private async settleWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
      timer.unref();
    });
    try {
      return await Promise.race([this.work.then(() => true, () => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes a snapshot now if this replica gets the interval's lease (operators, tests). */
  snapshotNow(): Promise<TakeSnapshotResult | undefined> {
    return this.exclusive(() => this.snapshot('manual'));
  }

  /** Restores now if the cache lost its data and no other replica is restoring. */
  restoreNow(): Promise<RestoreSnapshotResult | undefined> {
    return this.exclusive(() => this.restore('manual'));
  }

  /**
   * The shared cache is reachable again (the cache breaker closed): if it came back without its data
   * (a restart without persistence, a failover to an empty node), restore it now rather than at the
   * next interval, before misses refill it at the cost of one quota unit per resource per client.
   */
  async primaryBack(): Promise<RestoreSnapshotResult | undefined> {
    if (!this.deps.lease.shared || this.stopping || !(this.options.restoreOnStart ?? true)) return undefined;
    await this.open();
    // the snapshot service's own connection reconnects on its own schedule: wait (bounded) until it
    // can tell whether the cache lost its data, instead of giving up on the first refused command
    for (let attempt = 0; attempt < 50 && !this.stopping; attempt++) {
      try {
        await this.deps.dump.isMarkedRestored();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200).unref());
      }
    }
    return this.exclusive(() => this.restore('reconnect'));
  }

  readiness(): SnapshotReadiness {
    const report: SnapshotReadiness = {
      ready: !this.restoringAtStart,
      store: this.deps.store.name,
      backend: this.deps.dump.backend,
      restoring: this.restoring,
    };
    if (this.restoreProgress !== undefined) report.restore = { ...this.restoreProgress };
    if (this.last !== undefined) {
      report.lastSnapshot = {
        id: this.last.id,
        ageSeconds: Math.round((this.deps.clock.now() - this.last.takenAt) / 1000),
        entries: this.last.entries,
        bytes: this.last.bytes,
      };
    }
    return report;
  }

  private open(): Promise<void> {
    this.opened ??= (async () => {
      try {
        await this.deps.open?.();
      } catch (error) {
        this.deps.logger.warn({ err: error, store: this.deps.store.name }, 'snapshot: cache connection not ready at start; retrying in the background');
      }
    })();
    return this.opened;
  }

  /** One snapshot or restore at a time in this process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.work.catch(() => undefined).then(fn);
    this.work = run;
    return run;
  }

  private schedule(): void {
    if (this.stopping) return;
    const jitter = this.options.jitter ?? 0.05;
    const delay = Math.max(1, Math.round(this.options.intervalMs * (1 + (Math.random() * 2 - 1) * jitter)));
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      await this.exclusive(async () => {
        if (this.stopping) return;
        // a shared cache that lost its data (flushed, failed over to an empty node) is restored, not snapshotted
        if (this.deps.lease.shared && (this.options.restoreOnStart ?? true) && (await this.lostDataSafe())) {
          await this.restore('interval');
          return;
        }
        await this.snapshot('interval');
      });
    } catch (error) {
      this.deps.logger.error({ err: error }, 'snapshot schedule: unexpected error');
    } finally {
      this.schedule();
    }
  }

  /** Empty, or without the mark of a finished restore: the cache lost its data since. */
  private async lostData(): Promise<boolean> {
    const { dump } = this.deps;
    return !(await dump.isMarkedRestored()) || (await dump.isEmpty());
  }

  private async lostDataSafe(): Promise<boolean> {
    try {
      return await this.lostData();
    } catch {
      // unreachable: the snapshot attempt that follows reports it
      return false;
    }
  }

  private async snapshot(trigger: string): Promise<TakeSnapshotResult | undefined> {
    const { lease, logger, store } = this.deps;
    // the lease outlives the snapshot on purpose: it is this interval's, so another replica waits for the next
    const leaseMs = Math.max(1000, Math.floor(this.options.intervalMs * 0.9));
    let held: boolean;
    try {
      held = await lease.acquire(SNAPSHOT_LEASE, leaseMs);
    } catch (error) {
      logger.warn({ err: error, trigger }, 'snapshot skipped: the lease could not be taken (cache unreachable)');
      return undefined;
    }
    if (!held) {
      logger.debug({ trigger }, 'snapshot skipped: another replica holds this interval’s lease');
      return undefined;
    }
    const renew = this.keepLease(SNAPSHOT_LEASE, leaseMs);
    let result: TakeSnapshotResult;
    try {
      result = await this.takeSnapshot.execute({ cancel: this.snapshotAbort.signal });
    } finally {
      clearInterval(renew);
    }
    if (result.outcome === 'ok') {
      this.last = { id: result.info.id, takenAt: result.info.takenAt, entries: result.info.entries, bytes: result.info.bytes };
      logger.info(
        {
          trigger,
          store: store.name,
          snapshotId: result.info.id,
          entries: result.info.entries,
          bytes: result.info.bytes,
          durationMs: Math.round(result.durationMs),
          removed: result.removed,
        },
        'snapshot taken',
      );
      for (const failure of result.removeErrors) logger.warn({ err: failure.error, snapshotId: failure.id }, 'old snapshot could not be removed');
    } else if (result.outcome === 'skipped') {
      logger.info({ trigger, store: store.name, reason: result.reason }, 'snapshot skipped');
    } else {
      logger.error({ trigger, store: store.name, reason: result.reason, err: result.error }, `snapshot failed: ${result.reason}`);
    }
    if (result.outcome !== 'ok' || !lease.shared) await lease.release(SNAPSHOT_LEASE).catch(() => undefined);
    return result;
  }

  private async restore(trigger: string): Promise<RestoreSnapshotResult | undefined> {
    const { dump, lease, logger, store } = this.deps;
    const lost = await this.lostData().catch((error: unknown) => {
      logger.warn({ err: error, trigger }, 'restore skipped: cannot tell whether the cache lost its data (cache unreachable)');
      return undefined;
    });
    if (lost === undefined) return undefined;
    if (!lost) {
      if (trigger !== 'interval') logger.info({ trigger, backend: dump.backend }, 'cache holds its data: no restore');
      return undefined;
    }
    const leaseMs = this.options.restoreLeaseMs ?? 30_000;
    let held: boolean;
    try {
      held = await lease.acquire(RESTORE_LEASE, leaseMs);
    } catch (error) {
      logger.warn({ err: error, trigger }, 'restore skipped: the lease could not be taken (cache unreachable)');
      return undefined;
    }
    if (!held) {
      logger.info({ trigger }, 'restore skipped: another replica is restoring the shared cache');
      return undefined;
    }
    this.restoring = true;
    this.restoreProgress = undefined;
    const renew = this.keepLease(RESTORE_LEASE, leaseMs);
    try {
      // another replica may have finished a restore between the check above and this lease
      if (!(await this.lostData())) {
        logger.info({ trigger }, 'restore skipped: another replica has just restored the shared cache');
        return undefined;
      }
      logger.info({ trigger, store: store.name, backend: dump.backend }, 'cache lost its data: restoring the newest snapshot');
      const result = await this.restoreSnapshot.execute({
        cancel: this.restoreAbort.signal,
        onProgress: (progress) => {
          this.restoreProgress = { ...progress };
        },
        onRejected: (rejected) => {
          logger.error(
            { store: store.name, snapshotId: rejected.snapshotId, reason: rejected.reason, restoredBeforeRejection: rejected.restoredBeforeRejection },
            `snapshot ${rejected.snapshotId} rejected (${rejected.reason}): ${rejected.message}; trying the next older one`,
          );
        },
      });
      if (result.outcome === 'ok') {
        logger.info(
          {
            store: store.name,
            snapshotId: result.snapshotId,
            restored: result.restored,
            expired: result.expired,
            present: result.present,
            entries: result.entries,
            durationMs: Math.round(result.durationMs),
            rejected: result.rejected.length,
          },
          'snapshot restored',
        );
      } else if (result.outcome === 'skipped') {
        logger.info({ store: store.name, reason: result.reason }, `restore skipped: ${result.reason}`);
      } else {
        if (this.restoreAbort.signal.aborted) this.restoreCutShort = true;
        logger.error({ store: store.name, reason: result.reason, rejected: result.rejected.length }, `restore failed: ${result.reason}; starting with the cache as it is`);
      }
      // settled (restored, nothing to restore, every snapshot refused): leave the mark, so this data
      // is not restored again until it is lost again; otherwise the next check tries again
      if (result.outcome !== 'failed' || result.exhausted) {
        await dump.markRestored().catch((error: unknown) => logger.warn({ err: error }, 'the restored mark could not be written; the next check restores again'));
      }
      return result;
    } catch (error) {
      logger.warn({ err: error, trigger }, 'restore skipped: cannot tell whether the cache lost its data (cache unreachable)');
      return undefined;
    } finally {
      clearInterval(renew);
      this.restoring = false;
      await lease.release(RESTORE_LEASE).catch(() => undefined);
    }
  }

  /** Renews a held lease every third of its ttl while long work runs. */
  private keepLease(name: string, ttlMs: number): NodeJS.Timeout {
    const timer = setInterval(() => {
      this.deps.lease.renew(name, ttlMs).then(
        (kept) => {
          if (!kept) this.deps.logger.warn({ lease: name }, 'lease lost while working (expired or taken over)');
        },
        (error: unknown) => this.deps.logger.warn({ err: error, lease: name }, 'lease renewal failed'),
      );
    }, Math.max(100, Math.floor(ttlMs / 3)));
    timer.unref();
    return timer;
  }
}

// ---------------------------------------------------------------------------------------------
// Building from the configuration (the container and the CLI)
// ---------------------------------------------------------------------------------------------

/** The configured snapshot store, or undefined with snapshot.store = none. */
export function buildSnapshotStore(config: MirrorConfig, logger?: Pick<Logger, 'warn'>, options: { writer?: string } = {}): BlobSnapshotStore | undefined {
  const { snapshot } = config;
  const onWarning = (message: string, error?: unknown): void => logger?.warn({ err: error }, message);
  const writer = options.writer ?? 'github-mirror';
  if (snapshot.store === 'file') return new BlobSnapshotStore(new FileBlobStore(snapshot.dir), { writer, onWarning });
  if (snapshot.store === 's3') {
    const blobs = new S3BlobStore({
      bucket: snapshot.s3.bucket,
      prefix: snapshot.s3.prefix,
      region: snapshot.s3.region,
      ...(snapshot.s3.endpoint ? { endpoint: snapshot.s3.endpoint } : {}),
      forcePathStyle: snapshot.s3.forcePathStyle,
    });
    return new BlobSnapshotStore(blobs, { writer, onWarning });
  }
  return undefined;
}

/** Connection options of the Redis cache, from the config (for a dedicated snapshot connection). */
export function redisConnectionOptions(config: MirrorConfig): RedisConnectionOptions {
  const r = config.cache.redis;
  const options: RedisConnectionOptions = {
    url: r.url,
    // bulk SCAN/GET pipelines of megabytes: the request path's tight timeout would cut them off
    commandTimeoutMs: Math.max(10_000, r.commandTimeoutMs),
    scaleReads: 'master',
  };
  if (r.username) options.username = r.username;
  if (r.password) options.password = r.password;
  if (r.tls) options.tls = true;
  if (r.sentinels.length > 0) {
    options.sentinels = r.sentinels;
    options.sentinelName = r.sentinelName;
    if (r.sentinelPassword) options.sentinelPassword = r.sentinelPassword;
  }
  if (r.clusterNodes.length > 0) options.clusterNodes = r.clusterNodes;
  return options;
}

/** A dedicated client to the configured Redis (connect() before use; quit() after). */
export function createSnapshotRedisClient(config: MirrorConfig): Redis | Cluster {
  return createRedisClients(redisConnectionOptions(config)).writer;
}

export interface SnapshotServiceWiring {
  config: MirrorConfig;
  logger: Logger;
  events: EventBusPort;
  clock: ClockPort;
  /** The cache backend behind the instrumentation (a MemoryCache for the memory backend). */
  cacheBackend: CachePort | undefined;
}

/**
 * The snapshot service for the configured store and cache backend, or undefined when snapshots are off
 * (snapshot.store = none) or the backend is one snapshots do not cover.
 */
export function buildSnapshotService(w: SnapshotServiceWiring): SnapshotService | undefined {
  const { config, logger } = w;
  const store = buildSnapshotStore(config, logger);
  if (store === undefined) return undefined;
  const options = { intervalMs: config.snapshot.intervalSeconds * 1000, retain: config.snapshot.retain };
  if (w.cacheBackend instanceof MemoryCache) {
    return new SnapshotService(
      {
        dump: new MemoryCacheDump(w.cacheBackend),
        store,
        lease: new LocalLease(w.clock),
        events: w.events,
        clock: w.clock,
        logger,
        close: () => Promise.resolve(store.close()),
      },
      { ...options, snapshotOnStop: true },
    );
  }
  if (config.cache.backend === 'redis') {
    const client = createSnapshotRedisClient(config);
    // without a listener, an ioredis connection error would be thrown at the process
    client.on('error', (error: unknown) => logger.debug({ err: error }, 'snapshot redis connection error'));
    const keyPrefix = config.cache.redis.keyPrefix;
    return new SnapshotService(
      {
        dump: new RedisCacheDump({ client, keyPrefix, defaultTtlMs: config.cache.ttlSeconds * 1000 }),
        store,
        lease: new RedisLease({ client, keyPrefix }),
        events: w.events,
        clock: w.clock,
        logger,
        open: async () => {
          await client.connect();
        },
        close: async () => {
          store.close();
          await client.quit().catch(() => client.disconnect());
        },
      },
      { ...options, snapshotOnStop: false },
    );
  }
  logger.warn({ backend: w.cacheBackend?.backend }, 'snapshots are configured but this cache backend has no snapshot support: snapshots off');
  return undefined;
}
