/**
 * The allowlist end to end (`GITHUB_USERS`, the Python mirror's colon-separated variable): 401 JSON
 * without a token, 403 JSON for a login not on the list, GitHub's own answer when /user fails, and a
 * revoked token refused once its validation expires. A fake clock drives the validation TTL.
 */
import test from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { FakeClock } from '../support/fakes.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let mirror: Mirror;
const clock = new FakeClock(Date.now());

const ALICE = 'token tok-alice';
const BOB = 'Bearer tok-bob';
const CAROL = 'token tok-carol';
const DAVE = 'token tok-dave';

test.before(async () => {
  github = await FakeGitHub.start();
  github.setUser('tok-alice', 'alice');
  github.setUser('tok-bob', 'bob');
  github.setUser('tok-carol', 'carol');
  github.setUser('tok-dave', 'Dave');
  github.setResource('/repos/o/r', { body: { name: 'r' } });
  mirror = await startMirror(github.url, { GITHUB_USERS: 'alice:Bob:dave', MIRROR_AUTH_VALIDATION_TTL_SECONDS: '300' }, { clock });
});

test.after.always(async () => {
  await mirror?.stop();
  await github?.close();
});

const get = (path: string, authorization?: string, init: RequestInit = {}) =>
  fetchText(`${mirror.url}${path}`, { ...init, headers: { ...(authorization ? { authorization } : {}), ...(init.headers as Record<string, string>) } });

test.serial('without a token: 401 JSON, for every method, and nothing reaches GitHub; /healthz stays open', async (t) => {
  github.resetCalls();
  for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
    const answer = await get('/repos/o/r', undefined, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
    t.is(answer.status, 401, method);
    if (method !== 'HEAD') t.like(JSON.parse(answer.text), { code: 'UNAUTHENTICATED' });
  }
  t.is(github.calls.length, 0);
  t.is((await get('/healthz')).status, 200);
  t.is((await get('/readyz')).status, 200);
});

test.serial('a login on the list is served; the check is made once, then kept', async (t) => {
  github.resetCalls();
  const first = await get('/repos/o/r', ALICE);
  t.is(first.status, 200);
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  for (let i = 0; i < 10; i++) t.is((await get('/repos/o/r', ALICE)).status, 200);
  t.is(github.callsTo('/user').length, 1);
  const check = github.callsTo('/user')[0];
  t.is(check?.credential, ALICE, 'checked with the client own token');
});

test.serial('logins compare case-insensitively (list "Bob", GitHub "bob"; list "dave", GitHub "Dave")', async (t) => {
  t.is((await get('/repos/o/r', BOB)).status, 200);
  t.is((await get('/repos/o/r', DAVE)).status, 200);
});

test.serial('a login not on the list: 403 JSON, and the request never reaches GitHub', async (t) => {
  github.resetCalls();
  for (let i = 0; i < 3; i++) {
    const answer = await get('/repos/o/r', CAROL);
    t.is(answer.status, 403);
    t.like(JSON.parse(answer.text), { code: 'FORBIDDEN_USER' });
  }
  const posted = await get('/repos/o/r/issues', CAROL, { method: 'POST', body: '{"title":"x"}' });
  t.is(posted.status, 403);
  t.is(github.callsTo('/repos/o/r').length, 0);
  t.is(github.callsTo('/repos/o/r/issues').length, 0);
  t.is(github.callsTo('/user').length, 1, 'the refusal is kept too');
});

test.serial('GitHub refusing the token on /user: its 401 is relayed as it is', async (t) => {
  github.injectFault('/user', { kind: 'status', status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } }, 1);
  const answer = await get('/repos/o/r', 'token tok-unknown');
  t.is(answer.status, 401);
  t.is(JSON.parse(answer.text).message, 'Bad credentials');
  t.is(answer.headers.get('x-cache'), 'ONLINE_MISS');
});

test.serial('an upstream error on /user with nothing cached: passed through with its status', async (t) => {
  github.setUser('tok-erin', 'alice');
  github.injectFault('/user', { kind: 'status', status: 503 }, 1);
  const answer = await get('/repos/o/r', 'token tok-erin');
  t.is(answer.status, 503);
  t.is(answer.headers.get('x-cache'), 'API_ERROR_MISS');
  const retry = await get('/repos/o/r', 'token tok-erin');
  t.is(retry.status, 200, 'not kept: the next request asks again');
});

test.serial("GitHub unreachable on /user with nothing cached: the mirror's own 502 JSON, not kept", async (t) => {
  github.setUser('tok-fred', 'alice');
  github.injectFault('/user', { kind: 'reset-mid-body' }, 1);
  const answer = await get('/repos/o/r', 'token tok-fred');
  t.is(answer.status, 502);
  t.is(answer.headers.get('content-type'), 'application/json; charset=utf-8');
  t.is(answer.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
  t.deepEqual(JSON.parse(answer.text), { message: 'Could not reach GitHub', code: 'UPSTREAM_UNREACHABLE' });
  const retry = await get('/repos/o/r', 'token tok-fred');
  t.is(retry.status, 200, 'not kept: the next request asks again');
});

test.serial('a revoked token stops working once its validation expires', async (t) => {
  t.is((await get('/repos/o/r', ALICE)).status, 200);
  // GitHub now refuses the token (revoked) — the mirror still trusts its verdict within the TTL ...
  github.injectFault('/user', { kind: 'status', status: 401, body: { message: 'Bad credentials' } }, 1);
  t.is((await get('/repos/o/r', ALICE)).status, 200);
  // ... and asks again once it is over: the revalidation of the cached /user gets the 401.
  clock.advance(301_000);
  const refused = await get('/repos/o/r', ALICE);
  t.is(refused.status, 401);
  t.is(JSON.parse(refused.text).message, 'Bad credentials');
});

test.serial('the check shares the cache with clients: a client GET /user after it is a 304 hit', async (t) => {
  github.setUser('tok-frank', 'dave');
  github.resetCalls();
  const own = await get('/user', 'token tok-frank', { headers: { accept: 'application/vnd.github+json' } });
  t.is(own.status, 200);
  t.is(JSON.parse(own.text).login, 'dave');
  t.is(own.headers.get('x-cache'), 'ONLINE_HIT', 'the entry the check stored, revalidated');
  t.deepEqual(
    github.callsTo('/user').map((c) => c.status),
    [200, 304],
  );
});
