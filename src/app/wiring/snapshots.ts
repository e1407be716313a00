/**
 * Snapshot wiring, from the configuration: the snapshot store (directory or S3), the dedicated Redis
 * connection with its dump and lease, and the SnapshotService for the configured cache backend with
 * its log lines subscribed. Used by the container and by the snapshot CLI's entry.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/index.js';
import { redisConnectionOptions } from './redis-options.js';
import { SnapshotService } from '../snapshot-service.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { CachePort } from '../../domain/ports/cache.port.js';
import type { EventEmitter2Bus } from '../../adapters/events/eventemitter2-bus.adapter.js';
import { MemoryCache } from '../../adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump } from '../../adapters/snapshot/memory-cache-dump.adapter.js';
import { BlobSnapshotStore } from '../../adapters/snapshot/blob-snapshot-store.adapter.js';
import { FileBlobStore } from '../../adapters/snapshot/file-blob-store.adapter.js';
import { S3BlobStore } from '../../adapters/snapshot/s3-blob-store.adapter.js';
import { RedisCacheDump } from '../../adapters/cache/redis/redis-dump.adapter.js';
import { createRedisClients } from '../../adapters/cache/redis/redis-client.js';
import { LocalLease } from '../../adapters/lease/local-lease.adapter.js';
import { RedisLease } from '../../adapters/lease/redis-lease.adapter.js';
import { subscribeSnapshotLogs } from '../../adapters/logging/snapshot-log.subscriber.js';

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

/** A dedicated client to the configured Redis (connect() before use; quit() after). */
export function createSnapshotRedisClient(config: MirrorConfig): Redis | Cluster {
  return createRedisClients(redisConnectionOptions(config)).writer;
}

/** The live Redis cache seen by snapshots over `client`: its dump and the lease every replica shares. */
export function redisSnapshotPorts(config: MirrorConfig, client: Redis | Cluster): { dump: RedisCacheDump; lease: RedisLease } {
  const keyPrefix = config.cache.redis.keyPrefix;
  return {
    dump: new RedisCacheDump({ client, keyPrefix, defaultTtlMs: config.cache.ttlSeconds * 1000, sharedBodies: config.cache.shareAcrossCredentials }),
    lease: new RedisLease({ client, keyPrefix }),
  };
}

export interface SnapshotServiceWiring {
  config: MirrorConfig;
  logger: Logger;
  /** The mirror's bus: the service emits into it, its log lines subscribe to it (and go with its listeners). */
  events: EventEmitter2Bus;
  clock: ClockPort;
  /** The cache backend behind the instrumentation (a MemoryCache for the memory backend). */
  cacheBackend: CachePort | undefined;
}

/**
 * The snapshot service for the configured store and cache backend, or undefined when snapshots are off
 * (snapshot.store = none) or the backend is one snapshots do not cover.
 */
export function buildSnapshotService(w: SnapshotServiceWiring): SnapshotService | undefined {
  const { config, logger, events, clock } = w;
  const store = buildSnapshotStore(config, logger);
  if (store === undefined) return undefined;
  const options = { intervalMs: config.snapshot.intervalSeconds * 1000, retain: config.snapshot.retain };
  if (w.cacheBackend instanceof MemoryCache) {
    subscribeSnapshotLogs(events, logger);
    const dump = new MemoryCacheDump(w.cacheBackend);
    const close = (): Promise<void> => Promise.resolve(store.close());
    return new SnapshotService({ dump, store, lease: new LocalLease(clock), events, clock, close }, { ...options, snapshotOnStop: true });
  }
  if (config.cache.backend === 'redis') {
    subscribeSnapshotLogs(events, logger);
    const client = createSnapshotRedisClient(config);
    // without a listener, an ioredis connection error would be thrown at the process
    client.on('error', (error: unknown) => logger.debug({ err: error }, 'snapshot redis connection error'));
    const open = async (): Promise<void> => {
      await client.connect();
    };
    const close = async (): Promise<void> => {
      store.close();
      await client.quit().catch(() => client.disconnect());
    };
    return new SnapshotService({ ...redisSnapshotPorts(config, client), store, events, clock, open, close }, { ...options, snapshotOnStop: false });
  }
  logger.warn({ backend: w.cacheBackend?.backend }, 'snapshots are configured but this cache backend has no snapshot support: snapshots off');
  return undefined;
}
