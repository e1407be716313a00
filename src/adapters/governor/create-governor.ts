/**
 * Builds the upstream governor from plain options: the fleet-wide one on Redis when the cache backend
 * is Redis (its request-path connection, behind the cache breaker's state), the in-memory one otherwise.
 */
import type { Cluster, Redis } from 'ioredis';
import type { EventEmitter2Bus } from '../events/eventemitter2-bus.adapter.js';
import type { GovernorPort } from '../../domain/ports/governor.port.js';
import { MemoryGovernor, type GovernorOptions } from './memory-governor.adapter.js';
import { RedisGovernor } from './redis-governor.adapter.js';

export interface SharedGovernorBackend {
  client: Redis | Cluster;
  keyPrefix: string;
  /** False while Redis should not be asked (the cache breaker is not closed). */
  available: () => boolean;
  /** The bus the cache reports its errors on (a Redis cache error: the governor leaves Redis alone for a second). */
  cacheEvents?: Pick<EventEmitter2Bus, 'on'>;
}

export function createGovernor(options: GovernorOptions & { shared?: SharedGovernorBackend; onRedisError?: (error: unknown) => void }): GovernorPort {
  const { shared, onRedisError, ...rest } = options;
  if (shared === undefined) return new MemoryGovernor(rest);
  return new RedisGovernor({ ...rest, ...shared, ...(onRedisError === undefined ? {} : { onRedisError }) });
}
