/**
 * Redis and GitHub down together: what the replica cached in memory while Redis was away is still
 * served (stale, marked); everything else gets a clear JSON error, never a hang or a 500.
 */
import test from 'ava';
import type { FakeGitHub } from '../support/fake-github.js';
import { fetchText } from '../support/mirror-harness.js';
import { waitFor, type RedisProcess } from '../support/redis-harness.js';
import { RedisStack } from '../support/redis-stack.js';
import type { Mirror } from '../../src/app/mirror.js';

let stack: RedisStack | undefined;
let github: FakeGitHub;
let redis: RedisProcess;
let mirror: Mirror;
const TOKEN = 'token double-failure';

test.before(async () => {
  stack = await RedisStack.start({ MIRROR_UPSTREAM_TIMEOUT_MS: '300', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' });
  ({ github, redis } = stack);
  mirror = stack.mirror();
});

test.after.always(() => stack?.close());

const get = (path: string) => fetchText(`${mirror.url}${path}`, { headers: { authorization: TOKEN } });

test('Redis down, then GitHub down: memory entries served stale, the rest clear errors', async (t) => {
  github.setResource('/repos/o/kept', { body: { kept: true } });
  github.setResource('/repos/o/never', { body: { never: true } });
  t.is(mirror.cache.backend, 'redis');
  redis.kill('SIGKILL');
  await waitFor('breaker open', async () => (await get('/repos/o/kept')).status === 200 && mirror.cache.backend === 'memory', 10_000, 100);
  // stored in this replica's memory while Redis is away
  t.is((await get('/repos/o/kept')).headers.get('x-cache'), 'ONLINE_HIT');

  github.injectFault(/.*/, { kind: 'hang' });
  const stale = await get('/repos/o/kept');
  t.is(stale.status, 200);
  t.is(stale.headers.get('x-cache'), 'API_TIMEOUT_HIT');
  t.truthy(stale.headers.get('x-cache-stale-age'));
  t.deepEqual(JSON.parse(stale.text), { kept: true });

  const missing = await get('/repos/o/never');
  t.is(missing.status, 504);
  t.is(missing.headers.get('x-cache'), 'API_TIMEOUT_MISS');
  t.deepEqual(JSON.parse(missing.text), { message: 'GitHub did not answer in time', code: 'UPSTREAM_TIMEOUT' });

  github.clearFaults();
  github.injectFault(/.*/, { kind: 'reset-mid-body' });
  const reset = await get('/repos/o/never');
  t.is(reset.status, 502);
  t.is(JSON.parse(reset.text).code, 'UPSTREAM_UNREACHABLE');
  t.is((await get('/repos/o/kept')).headers.get('x-cache'), 'API_CONNECTION_ERROR_HIT');
  github.clearFaults();
});
