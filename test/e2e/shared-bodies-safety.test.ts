/**
 * Issue 16, the safety rules of bodies shared across credentials, through a real mirror (Redis backend,
 * the production layout) in front of the fake GitHub with GitHub's ETag formula:
 *
 * - a token without access to a private repository never gets its body: not on the 304 path (GitHub
 *   answers it 404 whatever If-None-Match it sends), not with GitHub failing or down (API_*_MISS,
 *   RATE_LIMITED_MISS, OFFLINE_MISS: stale answers use a credential's own entry only), not via HEAD,
 *   not by sending the ETag it would get (or the owner's) as its own If-None-Match, not through the
 *   freshness window;
 * - a body that differs per token (a repository's `permissions`) gives each token its own body,
 *   while tokens that see the same body share it.
 */
import test from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { githubEtag } from '../support/github-etag.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const OWNER = 'token ghs_owner000000000000000000000000000000';
const OUTSIDER = 'token ghs_outsider0000000000000000000000000000';
const SECRET_TEXT = 'launch codes of the private repository';
const PRIVATE = '/repos/acme/private';

let github: FakeGitHub;
let redis: RedisProcess;
/** Breaker off, short timeout: every failure is an API_*_MISS. */
let mirror: Mirror;
/** Freshness window on. */
let fresh: Mirror;
/** Upstream breaker with low thresholds, for OFFLINE_MISS. */
let offline: Mirror;
let offlineGithub: FakeGitHub;

test.before(async () => {
  [github, offlineGithub, redis] = await Promise.all([FakeGitHub.start(), FakeGitHub.start(), startRedis()]);
  const redisEnv = (prefix: string) => ({ MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, MIRROR_REDIS_KEY_PREFIX: prefix });
  [mirror, fresh, offline] = await Promise.all([
    startMirror(github.url, { ...redisEnv('safe:'), MIRROR_UPSTREAM_TIMEOUT_MS: '400', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }),
    startMirror(github.url, { ...redisEnv('fresh:'), MIRROR_CACHE_FRESHNESS_MS: '60000', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }),
    startMirror(offlineGithub.url, {
      ...redisEnv('off:'),
      MIRROR_UPSTREAM_TIMEOUT_MS: '300',
      MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD: '3',
      MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE: '50',
      MIRROR_UPSTREAM_BREAKER_RESET_TIMEOUT_MS: '60000',
    }),
  ]);
  for (const fake of [github, offlineGithub]) {
    fake.setResource(PRIVATE, { body: { name: 'private', private: true, secret: SECRET_TEXT } });
    fake.setAccess(PRIVATE, { allow: [OWNER] });
  }
});

test.after.always(async () => {
  await Promise.all([mirror?.stop(), fresh?.stop(), offline?.stop()]);
  await Promise.all([github?.close(), offlineGithub?.close()]);
  await redis?.stop();
});

const get = (base: Mirror, path: string, authorization: string, init: RequestInit = {}) =>
  fetchText(`${base.url}${path}`, { ...init, headers: { authorization, accept: 'application/vnd.github+json', ...(init.headers as Record<string, string>) } });

function leaks(text: string): boolean {
  return text.includes(SECRET_TEXT);
}

test.serial('the owner reads the private repository; the outsider gets 404 on the 304 path, by GET and HEAD', async (t) => {
  const owned = await get(mirror, PRIVATE, OWNER);
  t.is(owned.status, 200);
  t.true(leaks(owned.text));
  t.is((await get(mirror, PRIVATE, OWNER)).headers.get('x-cache'), 'ONLINE_HIT');

  github.resetCalls();
  const denied = await get(mirror, PRIVATE, OUTSIDER);
  t.is(denied.status, 404);
  t.false(leaks(denied.text));
  t.is(denied.headers.get('x-cache'), 'ONLINE_MISS');
  const call = github.callsTo(PRIVATE).at(-1);
  t.truthy(call?.headers['if-none-match'], 'the outsider was offered the stored body’s ETag…');
  t.is(call?.status, 404, '…and GitHub refused it');

  const head = await get(mirror, PRIVATE, OUTSIDER, { method: 'HEAD' });
  t.is(head.status, 404);
  t.is(head.text, '');
});

test.serial('the outsider’s own If-None-Match (its would-be ETag, or the owner’s) gets no 304', async (t) => {
  const body = JSON.stringify({ name: 'private', private: true, secret: SECRET_TEXT });
  const accept = 'application/vnd.github+json';
  for (const tag of [githubEtag({ accept, authorization: OUTSIDER }, body), githubEtag({ accept, authorization: OWNER }, body), '*']) {
    const answer = await get(mirror, PRIVATE, OUTSIDER, { headers: { 'if-none-match': tag } });
    t.is(answer.status, 404, tag);
    t.false(leaks(answer.text));
  }
});

test.serial('with GitHub failing the outsider gets *_MISS answers, never the owner’s body', async (t) => {
  const faults: Array<[Parameters<FakeGitHub['injectFault']>[1], string]> = [
    [{ kind: 'status', status: 502 }, 'API_ERROR_MISS'],
    [{ kind: 'hang' }, 'API_TIMEOUT_MISS'],
    [{ kind: 'reset-mid-body' }, 'API_CONNECTION_ERROR_MISS'],
    [{ kind: 'rate-limit' }, 'RATE_LIMITED_MISS'],
  ];
  for (const [fault, outcome] of faults) {
    github.clearFaults();
    github.injectFault(PRIVATE, fault);
    const answer = await get(mirror, PRIVATE, OUTSIDER);
    t.is(answer.headers.get('x-cache'), outcome);
    t.false(leaks(answer.text), outcome);
    const own = await get(mirror, PRIVATE, OWNER);
    t.true(leaks(own.text), 'the owner still gets its own entry');
    t.is(own.headers.get('x-cache'), outcome.replace(/_MISS$/, '_HIT'));
  }
  github.clearFaults();
});

test.serial('with the upstream breaker open the outsider gets OFFLINE_MISS, the owner OFFLINE_HIT', async (t) => {
  t.true(leaks((await get(offline, PRIVATE, OWNER)).text));
  offlineGithub.injectFault(/./, { kind: 'hang' });
  let outcome = '';
  for (let i = 0; i < 10 && outcome !== 'OFFLINE_HIT'; i += 1) outcome = (await get(offline, PRIVATE, OWNER)).headers.get('x-cache') ?? '';
  t.is(outcome, 'OFFLINE_HIT');
  const denied = await get(offline, PRIVATE, OUTSIDER);
  t.is(denied.headers.get('x-cache'), 'OFFLINE_MISS');
  t.is(denied.status, 504);
  t.false(leaks(denied.text));
  offlineGithub.clearFaults();
});

test.serial('the freshness window serves only a credential’s own entry', async (t) => {
  t.true(leaks((await get(fresh, PRIVATE, OWNER)).text));
  t.is((await get(fresh, PRIVATE, OWNER)).headers.get('x-cache'), 'FRESH_HIT');
  const denied = await get(fresh, PRIVATE, OUTSIDER);
  t.is(denied.status, 404);
  t.false(leaks(denied.text));
});

test.serial('per-token bodies (permissions) stay per token; tokens with the same body share it', async (t) => {
  const path = '/repos/acme/public';
  const admin = 'token ghs_admin00000000000000000000000000000000';
  const readerA = 'token ghs_readerA000000000000000000000000000000';
  const readerB = 'token ghs_readerB000000000000000000000000000000';
  github.setResource(path, {
    body: { name: 'public', permissions: { admin: false, push: false, pull: true } },
    perCredential: { [admin]: { permissions: { admin: true, push: true, pull: true } } },
  });
  const permissionsOf = async (token: string) => (JSON.parse((await get(mirror, path, token)).text) as { permissions: { admin: boolean } }).permissions.admin;
  t.true(await permissionsOf(admin));
  t.false(await permissionsOf(readerA), 'the reader is not served the admin’s body');
  t.is(github.quotaSpent(readerA), 1, 'the admin’s body did not match: fetched');
  t.false(await permissionsOf(readerB));
  t.is(github.quotaSpent(readerB), 0, 'the reader’s body matched: shared');
  t.true(await permissionsOf(admin), 'the admin keeps its own');
  const admin2 = 'token ghs_admin20000000000000000000000000000000';
  github.setPerCredential(path, admin2, { permissions: { admin: true, push: true, pull: true } });
  t.true(await permissionsOf(admin2), 'a second admin token gets the admin body (one of the stored ones)');
  t.is(github.quotaSpent(admin2), 0);
});
