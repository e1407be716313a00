/**
 * Connection options of the configured Redis (standalone, Sentinel or Cluster; credentials, TLS), as
 * one plain object for the Redis client factory. The cache adds its request-path timeouts on top; the
 * snapshot connection uses them as they are.
 */
import type { MirrorConfig } from '../config/index.js';
import type { RedisConnectionOptions } from '../../adapters/cache/redis/redis-client.js';

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
