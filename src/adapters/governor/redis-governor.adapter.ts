/**
 * GovernorPort for the fleet (the Redis cache backend): the queue over the Redis counters, with the
 * in-memory counters as the fallback while Redis cannot be used.
 */
import type { Cluster, Redis } from 'ioredis';
import { EventName } from '../../domain/events/events.js';
import type { EventEmitter2Bus } from '../events/eventemitter2-bus.adapter.js';
import { MemoryGovernorStore } from './memory-governor-store.js';
import { RedisGovernorStore } from './redis-governor-store.js';
import { QueuedGovernor } from './queued-governor.js';
import { limitsOf, optional, queueOptions, type GovernorOptions } from './memory-governor.adapter.js';

export interface RedisGovernorOptions extends GovernorOptions {
  client: Redis | Cluster;
  keyPrefix: string;
  /** False while Redis should not be asked (the cache breaker is not closed). */
  available?: () => boolean;
  /** Told when Redis calls start failing (once per outage). */
  onRedisError?: (error: unknown) => void;
  /** Length of a lease of reads, in ms (0 or absent = none; off in a Cluster): see RedisGovernorStore. */
  leaseMs?: number;
  /**
   * The bus the cache reports on: after a `cache.error` of the Redis backend (a timeout, a lost
   * connection) the governor counts in memory for a second instead of waiting on the same Redis.
   */
  cacheEvents?: Pick<EventEmitter2Bus, 'on'>;
}

export class RedisGovernor extends QueuedGovernor {
  readonly store: RedisGovernorStore;
  /** The fallback counters (and a copy of every hold). */
  readonly memory: MemoryGovernorStore;
  private readonly unsubscribe: (() => void) | undefined;

  constructor(options: RedisGovernorOptions) {
    const limits = limitsOf(options);
    const memory = new MemoryGovernorStore({ limits, clock: options.clock, ...optional(options) });
    const store = new RedisGovernorStore({
      client: options.client,
      keyPrefix: options.keyPrefix,
      limits,
      fallback: memory,
      clock: options.clock,
      ...(options.available === undefined ? {} : { available: options.available }),
      ...(options.slotTtlMs === undefined ? {} : { slotTtlMs: options.slotTtlMs }),
      ...(options.onRedisError === undefined ? {} : { onError: options.onRedisError }),
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      // a hold another replica learnt: this replica knows it now (holds_active), as if met in the store
      onHoldMessage: (partition, holdMs) => options.events?.emit({ name: EventName.governorHold, partition, holdMs, source: 'store' }),
    });
    super(store, options.clock, queueOptions(options));
    this.store = store;
    this.memory = memory;
    this.unsubscribe = options.cacheEvents?.on(EventName.cacheError, (event) => {
      if (event.backend === 'redis') store.suspend();
    });
  }

  override async close(): Promise<void> {
    this.unsubscribe?.();
    await super.close();
  }
}
