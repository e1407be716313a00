/**
 * The cross-credential suite (test/support/cross-credential-suite.ts) against a real Redis in the shared
 * layout: the domain behaves the same whatever holds the bodies.
 */
import anyTest, { type TestFn } from 'ava';
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import { crossCredentialSuite, SECRET, type CrossCredentialContext } from '../support/cross-credential-suite.js';

const test = anyTest as TestFn<CrossCredentialContext>;
let redis: RedisProcess;
const caches: RedisCache[] = [];
let n = 0;

test.before(async () => {
  redis = await startRedis();
});

test.beforeEach((t) => {
  t.context.makeCache = async () => {
    // a prefix per test: the tests run concurrently on one server
    const cache = new RedisCache({ url: redis.url, keyPrefix: `cross${n++}:`, commandTimeoutMs: 500, bodyKeys: new BodyKeys(SECRET) });
    caches.push(cache);
    await cache.start();
    return cache;
  };
});

test.after.always(async () => {
  await Promise.all(caches.map((c) => c.close()));
  await redis?.stop();
});

crossCredentialSuite(test);
