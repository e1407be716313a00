/**
 * Issue 16, the quota promise: a client that rotates its token (GitHub App installation tokens expire
 * every hour, GITHUB_TOKEN is new for every job) keeps the cache warm. Ten tokens T1..T10 of one
 * identity read the same 60 resources one after the other, through a real mirror in front of the fake
 * GitHub (GitHub's ETag formula): with cache.shareAcrossCredentials (the default) T2..T10 spend no
 * quota when nothing changed and exactly 6 when 6 resources changed in between; with it off, 60 per
 * rotation (today's behaviour). Memory and Redis backends alike. A first GET of an empty list costs
 * nothing and answers [].
 */
import test, { type ExecutionContext } from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const RESOURCES = 60;
const TOKENS = Array.from({ length: 10 }, (_, i) => `token ghs_${String(i + 1).padStart(2, '0')}${'x'.repeat(36)}`);
const paths = Array.from({ length: RESOURCES }, (_, i) => `/repos/rot/r${i}`);

let redis: RedisProcess;
const closers: Array<() => Promise<void>> = [];

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  for (const close of closers.reverse()) await close();
  await redis?.stop();
});

async function setUp(env: Record<string, string>): Promise<{ github: FakeGitHub; mirror: Mirror }> {
  const github = await FakeGitHub.start();
  closers.push(() => github.close());
  const mirror = await startMirror(github.url, { MIRROR_UPSTREAM_BREAKER_ENABLED: 'false', ...env });
  closers.push(() => mirror.stop());
  for (const [i, path] of paths.entries()) github.setResource(path, { body: { id: i, name: `r${i}`, description: 'd'.repeat(300), version: 0 } });
  return { github, mirror };
}

/** Reads every resource with `token`; returns the X-Cache values seen, and checks each body. */
async function readAll(t: ExecutionContext, mirror: Mirror, token: string, versions: number[]): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (const [i, path] of paths.entries()) {
    const answer = await fetchText(`${mirror.url}${path}`, { headers: { authorization: token, accept: 'application/vnd.github+json' } });
    t.is(answer.status, 200);
    const body = JSON.parse(answer.text) as { id: number; version: number };
    t.is(body.id, i);
    t.is(body.version, versions[i] ?? 0);
    const outcome = answer.headers.get('x-cache') ?? '';
    seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
  }
  return seen;
}

const backends: Array<[string, () => Record<string, string>]> = [
  ['memory', () => ({})],
  ['redis', () => ({ MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_REDIS_KEY_PREFIX: `rot${Math.random().toString(36).slice(2, 8)}:` })],
];

for (const [backend, env] of backends) {
  test(`${backend}: T2..T10 spend 0 quota on 60 unchanged resources; their answers are shared ONLINE_HITs`, async (t) => {
    const { github, mirror } = await setUp(env());
    const versions = paths.map(() => 0);
    await readAll(t, mirror, TOKENS[0] as string, versions);
    t.is(github.quotaSpent(TOKENS[0]), RESOURCES);
    for (const token of TOKENS.slice(1)) {
      const seen = await readAll(t, mirror, token, versions);
      t.is(github.quotaSpent(token), 0, `quota of ${token.slice(0, 12)}…`);
      t.is(seen.get('ONLINE_HIT'), RESOURCES);
    }
    // each token now has its own entry: its next read is its own plain revalidation
    const again = await fetchText(`${mirror.url}${paths[0]}`, { headers: { authorization: TOKENS[4] as string, accept: 'application/vnd.github+json' } });
    t.is(again.headers.get('x-cache'), 'ONLINE_HIT');
    t.is(again.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304');
    t.is(github.totalQuotaSpent(), RESOURCES);
    // ten tokens' entries, one body per resource: /metrics and /readyz say so
    const metrics = (await fetchText(`${mirror.url}/metrics`)).text;
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
    const storage = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text).storage as Record<string, unknown>;
    t.is(storage['shareAcrossCredentials'], true);
    if (backend === 'memory') {
      t.is(gauge('github_mirror_cached_bodies'), RESOURCES);
      t.is(gauge('github_mirror_cached_credential_entries'), RESOURCES * TOKENS.length);
      t.like(storage, { entries: RESOURCES * TOKENS.length, bodies: RESOURCES });
    } else {
      // Redis estimates from a sample of its keys: about 10 entries per body
      t.true(gauge('github_mirror_cached_credential_entries') > 3 * gauge('github_mirror_cached_bodies'), metrics);
      t.like(storage, { estimated: true });
      t.true((storage['entries'] as number) > (storage['bodies'] as number));
    }
  });

  test(`${backend}: when 6 of 60 resources change between rotations, each new token spends exactly 6`, async (t) => {
    const { github, mirror } = await setUp(env());
    const versions = paths.map(() => 0);
    await readAll(t, mirror, TOKENS[0] as string, versions);
    for (const [round, token] of TOKENS.slice(1).entries()) {
      for (let k = 0; k < 6; k += 1) {
        const i = (round * 6 + k * 7) % RESOURCES;
        versions[i] = (versions[i] ?? 0) + 1;
        github.updateResource(paths[i] as string, { id: i, name: `r${i}`, description: 'd'.repeat(300), version: versions[i] });
      }
      await readAll(t, mirror, token, versions);
      t.is(github.quotaSpent(token), 6, `quota of ${token.slice(0, 12)}…`);
    }
  });
}

test('shareAcrossCredentials=false: every rotation spends 60, as before', async (t) => {
  const { github, mirror } = await setUp({ MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: 'false' });
  const versions = paths.map(() => 0);
  for (const token of TOKENS.slice(0, 4)) {
    const seen = await readAll(t, mirror, token, versions);
    t.is(github.quotaSpent(token), RESOURCES);
    t.is(seen.get('ONLINE_MISS'), RESOURCES);
  }
  // the upstream requests carried no If-None-Match for a token without an entry of its own
  t.true(github.calls.every((call) => call.headers['if-none-match'] === undefined));
});

test('the shared answer says so in Cache-Status; the first GET of an empty list costs nothing and answers []', async (t) => {
  const { github, mirror } = await setUp({});
  const first = await fetchText(`${mirror.url}${paths[1]}`, { headers: { authorization: TOKENS[0] as string } });
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  const shared = await fetchText(`${mirror.url}${paths[1]}`, { headers: { authorization: TOKENS[1] as string } });
  t.is(shared.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(shared.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304; detail=shared');
  t.is(shared.text, first.text);

  github.setList('/repos/rot/r1/issues', []);
  for (const token of TOKENS.slice(0, 3)) {
    const empty = await fetchText(`${mirror.url}/repos/rot/r1/issues?state=open`, { headers: { authorization: token } });
    t.is(empty.status, 200);
    t.is(empty.text, '[]');
    t.is(empty.headers.get('x-cache'), 'ONLINE_HIT');
    t.regex(empty.headers.get('content-type') ?? '', /^application\/json/);
    t.is(github.quotaSpent(token), token === TOKENS[0] ? 1 : 0, 'only T1’s first read of r1 cost anything');
  }
  const guessed = await fetchText(`${mirror.url}/repos/rot/r1/issues`, { headers: { authorization: TOKENS[5] as string } });
  t.is(guessed.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304; detail=guess');
  t.is(github.quotaSpent(TOKENS[5]), 0);

  // a non-empty list answers 200 as before: the guess costs nothing more than the read
  github.setList('/repos/rot/r2/issues', [{ number: 1 }]);
  const full = await fetchText(`${mirror.url}/repos/rot/r2/issues`, { headers: { authorization: TOKENS[6] as string } });
  t.is(full.headers.get('x-cache'), 'ONLINE_MISS');
  t.deepEqual(JSON.parse(full.text), [{ number: 1 }]);
  t.is(github.quotaSpent(TOKENS[6]), 1);
  // the list gets an item: the token's own entry of [] is revalidated and the new item fetched
  github.addItem('/repos/rot/r1/issues', { number: 7 });
  const grown = await fetchText(`${mirror.url}/repos/rot/r1/issues`, { headers: { authorization: TOKENS[5] as string } });
  t.deepEqual(JSON.parse(grown.text), [{ number: 7 }]);
  t.is(grown.headers.get('x-cache'), 'ONLINE_MISS');
});
