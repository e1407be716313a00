/**
 * The shared use-case suite (test/support/use-case-suite.ts) against a real Redis: the domain behaves
 * the same whatever holds the entries.
 */
import anyTest, { type TestFn } from 'ava';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { useCaseSuite, type SuiteContext } from '../support/use-case-suite.js';

const test = anyTest as TestFn<SuiteContext>;
let redis: RedisProcess;
const caches: RedisCache[] = [];
let n = 0;

test.before(async () => {
  redis = await startRedis();
});

test.beforeEach((t) => {
  t.context.makeCache = async () => {
    // a prefix per test: the tests run concurrently on one server
    const cache = new RedisCache({ url: redis.url, keyPrefix: `suite${n++}:`, commandTimeoutMs: 500 });
    caches.push(cache);
    await cache.start();
    return cache;
  };
});

test.after.always(async () => {
  await Promise.all(caches.map((c) => c.close()));
  await redis?.stop();
});

useCaseSuite(test);
