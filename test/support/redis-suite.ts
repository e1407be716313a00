/**
 * A shared suite's caches on one real Redis (the adapter twins of the unit suites): the server starts
 * before the file's tests, each test's `makeCache` gives a RedisCache under a key prefix of its own
 * (the tests run concurrently on one server), and every cache and the server are closed after.
 */
import type { TestFn } from 'ava';
import { RedisCache, type RedisCacheOptions } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import type { CachePort } from '../../src/domain/ports/cache.port.js';
import { startRedis, type RedisProcess } from './redis-harness.js';

export function cachesOnRealRedis<C extends { makeCache: () => Promise<CachePort> }>(test: TestFn<C>, prefix: string, options: Partial<RedisCacheOptions> = {}): void {
  let redis: RedisProcess | undefined;
  const caches: RedisCache[] = [];
  let n = 0;
  test.before(async () => {
    redis = await startRedis();
  });
  test.beforeEach((t) => {
    t.context.makeCache = async () => {
      if (redis === undefined) throw new Error('cachesOnRealRedis: Redis did not start');
      const cache = new RedisCache({ url: redis.url, keyPrefix: `${prefix}${n++}:`, commandTimeoutMs: 500, ...options });
      caches.push(cache);
      await cache.start();
      return cache;
    };
  });
  test.after.always(async () => {
    await Promise.all(caches.map((c) => c.close()));
    await redis?.stop();
  });
}
