/**
 * Every outcome of DESIGN §4 through a real mirror in front of the fake GitHub: X-Cache, Cache-Status,
 * X-Cache-Stale-Age, the body served and what reached upstream. Also: a body cut by a reset is never
 * cached nor served as complete, a secondary rate limit holds the credential until Retry-After is over,
 * and the upstream breaker answers OFFLINE_* at once, then recovers by itself.
 */
import test from 'ava';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { FakeClock } from '../support/fakes.js';
import { githubEtag } from '../support/github-etag.js';
import type { Mirror } from '../../src/app/mirror.js';
import { ALL_OUTCOMES } from '../../src/domain/model.js';
import { EventName } from '../../src/domain/events/events.js';

let github: FakeGitHub;
/** Breaker off, short upstream timeout, fake clock (exact stale ages, Retry-After holds). */
let mirror: Mirror;
/** The same with cache.shareAcrossCredentials off: a credential with no entry is a plain miss. */
let perCredential: Mirror;
/** Freshness window on. */
let fresh: Mirror;
/** Upstream is a port nobody listens on. */
let unreachable: Mirror;
/** Its own fake GitHub, the breaker on with low thresholds. */
let offlineGithub: FakeGitHub;
let offline: Mirror;
/** upstream.maxBodyBytes of 4 KiB. */
let tight: Mirror;
const breakerStates: string[] = [];
const clock = new FakeClock(Date.now());
const TIMEOUT_MS = '500';

test.before(async () => {
  github = await FakeGitHub.start();
  offlineGithub = await FakeGitHub.start();
  const closedPort = await freePort();
  [mirror, perCredential, fresh, unreachable, offline, tight] = await Promise.all([
    startMirror(github.url, { MIRROR_UPSTREAM_TIMEOUT_MS: TIMEOUT_MS, MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }, { clock }),
    startMirror(github.url, { MIRROR_UPSTREAM_TIMEOUT_MS: TIMEOUT_MS, MIRROR_UPSTREAM_BREAKER_ENABLED: 'false', MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: 'false' }, { clock }),
    startMirror(github.url, { MIRROR_CACHE_FRESHNESS_MS: '30000', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }),
    startMirror(`http://127.0.0.1:${closedPort}`, { MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }),
    startMirror(offlineGithub.url, {
      MIRROR_UPSTREAM_TIMEOUT_MS: TIMEOUT_MS,
      MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD: '3',
      MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE: '50',
      MIRROR_UPSTREAM_BREAKER_RESET_TIMEOUT_MS: '200',
    }),
    startMirror(github.url, { MIRROR_UPSTREAM_MAX_BODY_BYTES: '4096' }),
  ]);
  offline.bus.on(EventName.breakerChanged, (event) => {
    breakerStates.push((event).state);
  });
});

test.after.always(async () => {
  await Promise.all([mirror?.stop(), perCredential?.stop(), fresh?.stop(), unreachable?.stop(), offline?.stop(), tight?.stop()]);
  await github?.close();
  await offlineGithub?.close();
});

/** A port that was free a moment ago and has nobody listening now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every X-Cache value a client got in this file. */
const outcomesSeen = new Set<string>();

async function getFrom(base: Mirror, path: string, authorization: string, init: RequestInit = {}) {
  const answer = await fetchText(`${base.url}${path}`, { ...init, headers: { authorization, ...(init.headers as Record<string, string>) } });
  const outcome = answer.headers.get('x-cache');
  if (outcome !== null) outcomesSeen.add(outcome);
  return answer;
}

/** Caches `path` for `token` through `base` (ONLINE_MISS) and returns the body served. */
async function warm(base: Mirror, path: string, token: string): Promise<string> {
  const first = await getFrom(base, path, token);
  if (first.headers.get('x-cache') !== 'ONLINE_MISS' || first.status !== 200) throw new Error(`warm ${path}: ${first.status} ${first.headers.get('x-cache')}`);
  return first.text;
}

function isMirrorJson(text: string, code: string): boolean {
  const parsed = JSON.parse(text) as { message?: unknown; code?: unknown };
  return typeof parsed.message === 'string' && parsed.code === code;
}

// ---- online ------------------------------------------------------------------------------------

test.serial('ONLINE_MISS, then ONLINE_HIT (a 304 revalidation)', async (t) => {
  const token = 'token online';
  github.setResource('/repos/o/online', { body: { name: 'online' } });
  const miss = await getFrom(mirror, '/repos/o/online', token);
  t.is(miss.status, 200);
  t.is(miss.headers.get('x-cache'), 'ONLINE_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; fwd-status=200');
  t.is(miss.headers.get('x-cache-stale-age'), null);
  const hit = await getFrom(mirror, '/repos/o/online', token);
  t.is(hit.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304');
  t.is(hit.headers.get('x-cache-stale-age'), null);
  t.is(hit.text, miss.text);
  t.deepEqual(
    github.callsTo('/repos/o/online').map((c) => c.status),
    [200, 304],
  );
});

test.serial('FRESH_HIT within the freshness window: no upstream call at all', async (t) => {
  const token = 'token fresh';
  github.setResource('/repos/o/fresh', { body: { name: 'fresh' } });
  const body = await warm(fresh, '/repos/o/fresh', token);
  const hit = await getFrom(fresh, '/repos/o/fresh', token);
  t.is(hit.headers.get('x-cache'), 'FRESH_HIT');
  t.regex(hit.headers.get('cache-status') ?? '', /^github-mirror; hit; ttl=\d+$/);
  t.is(hit.text, body);
  t.is(github.callsTo('/repos/o/fresh').length, 1);
});

// ---- rate limited ------------------------------------------------------------------------------

test.serial('RATE_LIMITED_HIT serves the cached body with the fresh rate-limit headers; RATE_LIMITED_MISS passes the 403 on', async (t) => {
  const token = 'token ratelimited';
  github.setResource('/repos/o/rl-hit', { body: { name: 'rl-hit' } });
  github.setResource('/repos/o/rl-miss', { body: { name: 'rl-miss' } });
  const body = await warm(mirror, '/repos/o/rl-hit', token);
  clock.advance(42_000);
  github.injectFault(/^\/repos\/o\/rl-/, { kind: 'rate-limit' }, 2);
  const hit = await getFrom(mirror, '/repos/o/rl-hit', token);
  t.is(hit.status, 200);
  t.is(hit.headers.get('x-cache'), 'RATE_LIMITED_HIT');
  t.is(hit.headers.get('x-cache-stale-age'), '42');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=403; detail=rate-limited');
  t.is(hit.headers.get('x-ratelimit-remaining'), '0', 'the rate-limit state of the refusal');
  t.is(hit.text, body);

  const miss = await getFrom(mirror, '/repos/o/rl-miss', token);
  t.is(miss.status, 403);
  t.is(miss.headers.get('x-cache'), 'RATE_LIMITED_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; fwd-status=403; detail=rate-limited');
  t.is(miss.headers.get('x-cache-stale-age'), null);
  t.regex(JSON.parse(miss.text).message, /rate limit exceeded/i, "GitHub's own answer");
});

test.serial('secondary limit: Retry-After is passed on and the credential is held until it is over', async (t) => {
  const token = 'token secondary';
  const other = 'token unaffected';
  github.setResource('/repos/o/sec', { body: { name: 'sec' } });
  github.setResource('/repos/o/sec-other', { body: { name: 'sec-other' } });
  const body = await warm(perCredential, '/repos/o/sec', token);
  github.injectFault('/repos/o/sec', { kind: 'secondary-rate-limit', retryAfterSeconds: 60 }, 1);
  const limited = await getFrom(perCredential, '/repos/o/sec', token);
  t.is(limited.headers.get('x-cache'), 'RATE_LIMITED_HIT');
  t.is(limited.headers.get('retry-after'), '60');
  t.is(limited.text, body);
  const callsAfterLimit = github.calls.filter((c) => c.credential === token).length;

  clock.advance(20_000);
  const held = await getFrom(perCredential, '/repos/o/sec-other', token);
  t.is(held.status, 429);
  t.is(held.headers.get('x-cache'), 'RATE_LIMITED_MISS');
  t.is(held.headers.get('retry-after'), '40');
  t.is(JSON.parse(held.text).code, 'SECONDARY_RATE_LIMITED');
  const heldHit = await getFrom(perCredential, '/repos/o/sec', token);
  t.is(heldHit.headers.get('x-cache'), 'RATE_LIMITED_HIT');
  t.is(heldHit.headers.get('retry-after'), '40');
  t.is(heldHit.text, body);
  const posted = await getFrom(perCredential, '/repos/o/sec/issues', token, { method: 'POST', body: '{}' });
  t.is(posted.status, 429);
  t.is(github.calls.filter((c) => c.credential === token).length, callsAfterLimit, 'nothing sent upstream for that credential');
  t.is((await getFrom(perCredential, '/repos/o/sec-other', other)).status, 200, 'other credentials go on');

  clock.advance(40_000);
  const released = await getFrom(perCredential, '/repos/o/sec-other', token);
  t.is(released.status, 200);
  t.is(released.headers.get('x-cache'), 'ONLINE_MISS');
});

test.serial('with shared bodies: after its hold, a token with no entry of its own gets another’s body by a free 304', async (t) => {
  const token = 'token secondary-shared';
  const other = 'token unaffected-shared';
  github.setResource('/repos/o/sec-shared', { body: { name: 'sec-shared' } });
  const body = await warm(mirror, '/repos/o/sec-shared', other);
  github.injectFault(/^\/repos\/o\/sec-shared$/, { kind: 'secondary-rate-limit', retryAfterSeconds: 30 }, 1);
  const limited = await getFrom(mirror, '/repos/o/sec-shared', token);
  t.is(limited.headers.get('x-cache'), 'RATE_LIMITED_MISS', 'a rate-limited answer never hands out another credential’s body');
  t.false(limited.text.includes('sec-shared'));
  clock.advance(31_000);
  const released = await getFrom(mirror, '/repos/o/sec-shared', token);
  t.is(released.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(released.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304; detail=shared');
  t.is(released.text, body);
});

test.serial('with shared bodies: nothing of an answer cut mid-body is kept; the retry offers only the empty-list guess', async (t) => {
  const token = 'token reset-shared';
  const big = { name: 'reset-shared', padding: 'p'.repeat(8192) };
  github.setResource('/repos/o/reset-shared', { body: big });
  github.injectFault('/repos/o/reset-shared', { kind: 'reset-mid-body' }, 1);
  const miss = await getFrom(mirror, '/repos/o/reset-shared', token);
  t.is(miss.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
  const again = await getFrom(mirror, '/repos/o/reset-shared', token);
  t.is(again.headers.get('x-cache'), 'ONLINE_MISS');
  t.deepEqual(JSON.parse(again.text), big);
  const offered = github.callsTo('/repos/o/reset-shared').at(-1)?.headers['if-none-match'];
  t.is(offered, githubEtag({ accept: '*/*', authorization: token }, '[]'), 'no ETag of a stored body: none was stored');
});

// ---- upstream errors ---------------------------------------------------------------------------

test.serial('API_ERROR_HIT serves the cached body; API_ERROR_MISS passes the 5xx on', async (t) => {
  const token = 'token apierror';
  github.setResource('/repos/o/err-hit', { body: { name: 'err-hit' } });
  const body = await warm(mirror, '/repos/o/err-hit', token);
  clock.advance(7_000);
  github.injectFault(/^\/repos\/o\/err-/, { kind: 'status', status: 502, body: { message: 'Server Error' } }, 2);
  const hit = await getFrom(mirror, '/repos/o/err-hit', token);
  t.is(hit.status, 200);
  t.is(hit.headers.get('x-cache'), 'API_ERROR_HIT');
  t.is(hit.headers.get('x-cache-stale-age'), '7');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=502; detail=api-error');
  t.is(hit.text, body);
  const miss = await getFrom(mirror, '/repos/o/err-miss', token);
  t.is(miss.status, 502);
  t.is(miss.headers.get('x-cache'), 'API_ERROR_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; fwd-status=502; detail=api-error');
  t.is(JSON.parse(miss.text).message, 'Server Error', "GitHub's own body");
});

test.serial('API_TIMEOUT_HIT serves the cached body; API_TIMEOUT_MISS is a 504 JSON', async (t) => {
  const token = 'token timeout';
  github.setResource('/repos/o/slow-hit', { body: { name: 'slow-hit' } });
  const body = await warm(mirror, '/repos/o/slow-hit', token);
  clock.advance(3_000);
  github.injectFault(/^\/repos\/o\/slow-/, { kind: 'hang' }, 2);
  const hit = await getFrom(mirror, '/repos/o/slow-hit', token);
  t.is(hit.status, 200);
  t.is(hit.headers.get('x-cache'), 'API_TIMEOUT_HIT');
  t.is(hit.headers.get('x-cache-stale-age'), '3');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; detail=api-timeout');
  t.is(hit.text, body);
  const miss = await getFrom(mirror, '/repos/o/slow-miss', token);
  t.is(miss.status, 504);
  t.is(miss.headers.get('x-cache'), 'API_TIMEOUT_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; detail=api-timeout');
  t.true(isMirrorJson(miss.text, 'UPSTREAM_TIMEOUT'));
  github.clearFaults();
});

test.serial('API_CONNECTION_ERROR_HIT/MISS on a reset mid-body: the partial body is never cached nor served', async (t) => {
  const token = 'token reset';
  const big = { name: 'reset', padding: 'p'.repeat(8192) };
  github.setResource('/repos/o/reset-hit', { body: big });
  github.setResource('/repos/o/reset-miss', { body: big });
  const body = await warm(perCredential, '/repos/o/reset-hit', token);
  clock.advance(5_000);
  github.injectFault(/^\/repos\/o\/reset-/, { kind: 'reset-mid-body' }, 2);
  const hit = await getFrom(perCredential, '/repos/o/reset-hit', token);
  t.is(hit.status, 200);
  t.is(hit.headers.get('x-cache'), 'API_CONNECTION_ERROR_HIT');
  t.is(hit.headers.get('x-cache-stale-age'), '5');
  t.is(hit.headers.get('cache-status'), 'github-mirror; fwd=stale; detail=api-connection-error');
  t.is(hit.text, body, 'the whole cached body, not the half that arrived');

  const miss = await getFrom(perCredential, '/repos/o/reset-miss', token);
  t.is(miss.status, 502);
  t.is(miss.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; detail=api-connection-error');
  t.true(isMirrorJson(miss.text, 'UPSTREAM_UNREACHABLE'));

  // Nothing of the cut answers was kept: the next GETs are an unconditional miss and a 304 on the old entry.
  const again = await getFrom(perCredential, '/repos/o/reset-miss', token);
  t.is(again.headers.get('x-cache'), 'ONLINE_MISS');
  t.deepEqual(JSON.parse(again.text), big);
  t.is(github.callsTo('/repos/o/reset-miss').at(-1)?.headers['if-none-match'], undefined);
  const stillOld = await getFrom(perCredential, '/repos/o/reset-hit', token);
  t.is(stillOld.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(stillOld.text, body);
});

test.serial('a pass-through answer cut mid-body reaches the client as cut, never as complete', async (t) => {
  github.injectFault('/repos/o/reset-post', { kind: 'reset-mid-body' }, 1);
  const response = await fetch(`${mirror.url}/repos/o/reset-post`, { method: 'POST', headers: { authorization: 'token reset' }, body: '{}' });
  await t.throwsAsync(response.text(), undefined, 'the client sees a broken transfer');
});

test.serial('a pass-through answer whose body breaks before its first byte: 502 JSON, not a mirror error', async (t) => {
  // An upstream that sends the head of an answer, then drops the connection.
  const cutter = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.flushHeaders();
      setTimeout(() => res.socket?.destroy(), 30);
    });
  });
  await new Promise<void>((resolve) => cutter.listen(0, '127.0.0.1', resolve));
  const cutMirror = await startMirror(`http://127.0.0.1:${(cutter.address() as AddressInfo).port}`, { MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' });
  try {
    const answer = await getFrom(cutMirror, '/repos/o/r/issues', 'token cut', { method: 'POST', body: '{}' });
    t.is(answer.status, 502);
    t.is(answer.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
    t.is(answer.headers.get('content-length'), String(Buffer.byteLength(answer.text)), 'the upstream head is not kept');
    t.true(isMirrorJson(answer.text, 'UPSTREAM_UNREACHABLE'));
  } finally {
    await cutMirror.stop();
    await new Promise<void>((resolve) => cutter.close(() => resolve()));
  }
});

test.serial('API_CONNECTION_ERROR_MISS when nothing listens upstream: 502 JSON', async (t) => {
  const miss = await getFrom(unreachable, '/repos/o/r', 'token refused');
  t.is(miss.status, 502);
  t.is(miss.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
  t.true(isMirrorJson(miss.text, 'UPSTREAM_UNREACHABLE'));
  const posted = await getFrom(unreachable, '/repos/o/r/issues', 'token refused', { method: 'POST', body: '{}' });
  t.is(posted.status, 502);
  t.is(posted.headers.get('x-cache'), 'API_CONNECTION_ERROR_MISS');
});

// ---- offline (upstream breaker) ------------------------------------------------------------------

test.serial('OFFLINE_HIT / OFFLINE_MISS at once while the breaker is open; it recovers by itself', async (t) => {
  const token = 'token offline';
  offlineGithub.setResource('/repos/o/off', { body: { name: 'off' } });
  const body = await warm(offline, '/repos/o/off', token);

  // GitHub stops answering: timeouts pile up until the breaker opens.
  offlineGithub.injectFault(/./, { kind: 'hang' });
  const seen: string[] = [];
  for (let i = 0; i < 10 && seen.at(-1) !== 'OFFLINE_HIT'; i++) {
    const answer = await getFrom(offline, '/repos/o/off', token);
    t.is(answer.text, body);
    seen.push(answer.headers.get('x-cache') ?? '');
  }
  t.is(seen[0], 'API_TIMEOUT_HIT');
  t.is(seen.at(-1), 'OFFLINE_HIT', seen.join(','));
  t.true(breakerStates.includes('open'));

  // While open: nothing but the breaker's own probes reaches GitHub, and no answer waits for a timeout.
  const clientCalls = () => offlineGithub.calls.filter((c) => !c.target.startsWith('/rate_limit')).length;
  const before = clientCalls();
  for (let i = 0; i < 20; i++) {
    const hit = await getFrom(offline, '/repos/o/off', token);
    t.is(hit.status, 200);
    t.is(hit.headers.get('x-cache'), 'OFFLINE_HIT');
    t.is(hit.headers.get('cache-status'), 'github-mirror; hit; detail=upstream-offline');
    t.regex(hit.headers.get('x-cache-stale-age') ?? '', /^\d+$/);
    t.is(hit.text, body);
  }
  const miss = await getFrom(offline, '/repos/o/never-cached', token);
  t.is(miss.status, 504);
  t.is(miss.headers.get('x-cache'), 'OFFLINE_MISS');
  t.is(miss.headers.get('cache-status'), 'github-mirror; fwd=miss; detail=upstream-offline');
  t.is(miss.headers.get('x-cache-stale-age'), null);
  t.true(isMirrorJson(miss.text, 'UPSTREAM_OFFLINE'));
  const posted = await getFrom(offline, '/repos/o/off/issues', token, { method: 'POST', body: '{}' });
  t.is(posted.status, 504);
  t.is(posted.headers.get('x-cache'), 'OFFLINE_MISS');
  t.is(clientCalls(), before, 'no client request reached GitHub while the breaker was open');

  // GitHub is healthy again: the background probe closes the breaker without any client traffic.
  offlineGithub.clearFaults();
  for (let i = 0; i < 100 && breakerStates.at(-1) !== 'closed'; i++) await sleep(20);
  t.is(breakerStates.at(-1), 'closed', breakerStates.join(','));
  t.true(breakerStates.includes('half_open'));
  t.true(offlineGithub.calls.some((c) => c.target === '/rate_limit' && c.credential === undefined), 'probed anonymously');
  const back = await getFrom(offline, '/repos/o/off', token);
  t.is(back.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(back.text, body);
});

test.serial('API_BODY_TOO_LARGE_MISS: a body over upstream.maxBodyBytes is a 502 JSON of its own, the older entry not served', async (t) => {
  const token = 'token large';
  github.setResource('/repos/o/swells', { body: { small: true } });
  await warm(tight, '/repos/o/swells', token);
  github.updateResource('/repos/o/swells', { large: 'x'.repeat(5000) });
  const answer = await getFrom(tight, '/repos/o/swells', token);
  t.is(answer.status, 502);
  t.is(answer.headers.get('x-cache'), 'API_BODY_TOO_LARGE_MISS');
  t.is(answer.headers.get('x-cache-stale-age'), null);
  t.like(JSON.parse(answer.text), { code: 'UPSTREAM_BODY_TOO_LARGE' });
});

test.serial('every outcome of DESIGN §4 was seen by a client above', (t) => {
  t.deepEqual([...ALL_OUTCOMES].filter((outcome) => !outcomesSeen.has(outcome)), []);
});
