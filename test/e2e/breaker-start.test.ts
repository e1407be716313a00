/**
 * Issue 14, item 5: the breakers' state at start. /readyz and github_mirror_breaker_state tell the
 * cache and upstream breakers' state from the first request on (not from their first change); with
 * Redis unreachable an idle mirror stays open (it does not sit half-open); a normal start with Redis
 * up logs no warning.
 */
import test from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { fetchText, startMirror } from '../support/mirror-harness.js';
import { freePort, sleep, startRedis, type RedisProcess } from '../support/redis-harness.js';
import { createLogger } from '../../src/app/logger.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let redis: RedisProcess;
const mirrors: Mirror[] = [];

test.before(async () => {
  github = await FakeGitHub.start();
  redis = await startRedis();
});

test.after.always(async () => {
  for (const mirror of mirrors) await mirror.stop();
  await redis?.stop();
  await github?.close();
});

function capture(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { lines, logger };
}

async function breakers(mirror: Mirror): Promise<Record<string, string>> {
  return (JSON.parse((await fetchText(`${mirror.url}/readyz`)).text) as { breakers: Record<string, string> }).breakers;
}

async function breakerSeries(mirror: Mirror): Promise<string[]> {
  const text = (await fetchText(`${mirror.url}/metrics`)).text;
  return text.split('\n').filter((line) => line.startsWith('github_mirror_breaker_state{') && line.endsWith(' 1'));
}

test.serial('a normal start with Redis up: no warning logged, both breakers closed from the first request', async (t) => {
  const { lines, logger } = capture();
  const mirror = await startMirror(github.url, { MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_SNAPSHOT_STORE: 'none' }, { logger });
  mirrors.push(mirror);
  t.deepEqual(await breakers(mirror), { cache: 'closed', upstream: 'closed' });
  t.deepEqual((await breakerSeries(mirror)).sort(), [
    'github_mirror_breaker_state{breaker="cache",state="closed"} 1',
    'github_mirror_breaker_state{breaker="upstream",state="closed"} 1',
  ]);
  const warnings = lines.filter((line) => (line.level as number) >= 40);
  t.deepEqual(
    warnings.map((line) => line.msg),
    [],
    'no warning on a healthy start',
  );
  t.truthy(lines.find((line) => line.msg === 'redis ready'));
});

test.serial('Redis unreachable at start: the cache breaker is open from the first request and stays open while idle', async (t) => {
  const { lines, logger } = capture();
  const mirror = await startMirror(
    github.url,
    {
      MIRROR_CACHE_BACKEND: 'redis',
      MIRROR_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      MIRROR_CACHE_BREAKER_RESET_TIMEOUT_MS: '200',
      MIRROR_SNAPSHOT_STORE: 'none',
    },
    { logger },
  );
  mirrors.push(mirror);
  t.deepEqual(await breakers(mirror), { cache: 'open', upstream: 'closed' });
  t.true((await breakerSeries(mirror)).includes('github_mirror_breaker_state{breaker="cache",state="open"} 1'));
  // several reset timeouts with no request: still open, never half-open while Redis says it is down
  await sleep(1000);
  t.is((await breakers(mirror))['cache'], 'open');
  t.true((await breakerSeries(mirror)).includes('github_mirror_breaker_state{breaker="cache",state="open"} 1'));
  t.false(lines.some((line) => line.msg === 'cache breaker half-open: probing the primary'));
  // and it still serves, from memory
  github.setResource('/repos/o/start', { body: { ok: true } });
  t.is((await fetchText(`${mirror.url}/repos/o/start`)).status, 200);
});
