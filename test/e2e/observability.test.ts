/**
 * Observability end to end: a real mirror in front of the fake GitHub, known traffic (faults included),
 * then /metrics, /readyz and the captured log lines are checked.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import { parseMetrics, select, total, valueOf, type Sample } from '../support/prometheus-harness.js';
import { createLogger, redactSecrets } from '../../src/app/logger.js';
import { loadConfig } from '../../src/app/config/index.js';
import { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
/** Upstream breaker off: every outcome comes from the fault injected, not from the breaker's state. */
let mirror: Mirror;
/** Upstream breaker on, opening after 3 failed calls: the OFFLINE_* outcomes. */
let breakerMirror: Mirror;
/** Logs everything (trace) into `lines`. */
let loggedMirror: Mirror;
const lines: string[] = [];

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A random secret: its substrings never occur in a log line by chance. */
function secret(length: number): string {
  return [...randomBytes(length)].map((b) => ALNUM[b % ALNUM.length]).join('');
}
const PAT = `ghp_${secret(36)}`;
const FINE_GRAINED = `github_pat_${secret(22)}_${secret(59)}`;
const CLASSIC = randomBytes(20).toString('hex');
const QUERY_TOKEN = secret(40);
const A = `token ${PAT}`;
const PAT_HEADER = A;
const LOGIN = 'octo-login-4242';

test.before(async () => {
  github = await FakeGitHub.start();
  mirror = await startMirror(github.url, { MIRROR_UPSTREAM_TIMEOUT_MS: '300', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' });
  breakerMirror = await startMirror(github.url, {
    MIRROR_UPSTREAM_TIMEOUT_MS: '300',
    MIRROR_UPSTREAM_BREAKER_ENABLED: 'true',
    MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD: '3',
    MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE: '50',
    MIRROR_UPSTREAM_BREAKER_RESET_TIMEOUT_MS: '600000',
  });
  const logger = createLogger('trace', {
    write(line: string) {
      lines.push(line);
    },
  });
  loggedMirror = await startMirror(github.url, { MIRROR_UPSTREAM_TIMEOUT_MS: '300', MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }, { logger });
});

test.after.always(async () => {
  github?.clearFaults();
  await mirror?.stop();
  await breakerMirror?.stop();
  await loggedMirror?.stop();
  await github?.close();
});

async function get(base: Mirror, path: string, headers: Record<string, string> = { authorization: A }): Promise<{ status: number; outcome: string | null }> {
  const r = await fetchText(`${base.url}${path}`, { headers });
  return { status: r.status, outcome: r.headers.get('x-cache') };
}

async function scrape(base: Mirror): Promise<Sample[]> {
  const r = await fetchText(`${base.url}/metrics`);
  return parseMetrics(r.text);
}

/** `cache status method` → count, from every http_request_total series. */
function requestCounts(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(samples, 'http_request_total')) out[`${s.labels['cache']} ${s.labels['status']} ${s.labels['method']}`] = s.value;
  return out;
}

test.serial('after known traffic, /metrics counts every outcome exactly', async (t) => {
  github.setResource('/repos/o/obs', { body: { obs: 1 } });
  const expectOutcome = async (path: string, status: number, outcome: string) => {
    const r = await get(mirror, path);
    t.deepEqual(r, { status, outcome }, path);
  };
  await expectOutcome('/repos/o/obs', 200, 'ONLINE_MISS');
  await expectOutcome('/repos/o/obs', 200, 'ONLINE_HIT');
  await expectOutcome('/repos/o/obs', 200, 'ONLINE_HIT');
  github.injectFault('/repos/o/obs', { kind: 'status', status: 500 }, 1);
  await expectOutcome('/repos/o/obs', 200, 'API_ERROR_HIT');
  github.injectFault('/repos/o/obs', { kind: 'rate-limit' }, 1);
  await expectOutcome('/repos/o/obs', 200, 'RATE_LIMITED_HIT');
  github.injectFault('/repos/o/obs', { kind: 'hang' }, 1);
  await expectOutcome('/repos/o/obs', 200, 'API_TIMEOUT_HIT');
  github.injectFault('/repos/o/obs', { kind: 'reset-mid-body' }, 1);
  await expectOutcome('/repos/o/obs', 200, 'API_CONNECTION_ERROR_HIT');
  github.injectFault('/repos/o/none', { kind: 'status', status: 503 }, 1);
  await expectOutcome('/repos/o/none', 503, 'API_ERROR_MISS');
  github.injectFault('/repos/o/none', { kind: 'rate-limit' }, 1);
  await expectOutcome('/repos/o/none', 403, 'RATE_LIMITED_MISS');
  github.injectFault('/repos/o/none', { kind: 'hang' }, 1);
  await expectOutcome('/repos/o/none', 504, 'API_TIMEOUT_MISS');
  github.injectFault('/repos/o/none', { kind: 'reset-mid-body' }, 1);
  await expectOutcome('/repos/o/none', 502, 'API_CONNECTION_ERROR_MISS');
  await expectOutcome('/repos/o/none', 404, 'ONLINE_MISS');
  const post = await fetch(`${mirror.url}/repos/o/obs/issues`, { method: 'POST', headers: { authorization: A, 'content-type': 'application/json' }, body: '{"title":"x"}' });
  await post.text();
  t.is(post.headers.get('x-cache'), 'ONLINE_MISS');
  t.is((await fetchText(`${mirror.url}/healthz`)).status, 200);

  const samples = await scrape(mirror);
  t.deepEqual(requestCounts(samples), {
    'ONLINE_MISS 200 GET': 1,
    'ONLINE_HIT 200 GET': 2,
    'API_ERROR_HIT 200 GET': 1,
    'RATE_LIMITED_HIT 200 GET': 1,
    'API_TIMEOUT_HIT 200 GET': 1,
    'API_CONNECTION_ERROR_HIT 200 GET': 1,
    'API_ERROR_MISS 503 GET': 1,
    'RATE_LIMITED_MISS 403 GET': 1,
    'API_TIMEOUT_MISS 504 GET': 1,
    'API_CONNECTION_ERROR_MISS 502 GET': 1,
    'ONLINE_MISS 404 GET': 1,
    [`ONLINE_MISS ${post.status} POST`]: 1,
    'NONE 200 GET': 1,
  });
  for (const s of select(samples, 'http_request_total')) {
    t.is(valueOf(samples, 'request_latency_seconds_count', s.labels), s.value, 'the histogram counts the same requests');
  }
  // The 300 ms timeouts land in the buckets around 0.3 s, the hits well below.
  t.is(valueOf(samples, 'request_latency_seconds_bucket', { cache: 'API_TIMEOUT_MISS', le: '0.2' }), 0);
  t.is(valueOf(samples, 'request_latency_seconds_bucket', { cache: 'API_TIMEOUT_MISS', le: '+Inf' }), 1);

  // Upstream calls: every request above except /healthz made exactly one.
  const upstream = (labels: Record<string, string>) => total(samples, 'github_mirror_upstream_requests_total', labels);
  t.is(upstream({}), 13);
  t.is(upstream({ result: 'ok', status_class: '3xx', quota: 'free' }), 2, 'authenticated 304s are free');
  t.is(upstream({ result: 'timeout' }), 2);
  t.is(upstream({ result: 'connection_error' }), 2);
  t.is(upstream({ result: 'ok', status_class: '5xx' }), 2);
  t.is(upstream({ result: 'ok', status_class: '4xx' }), 3);
  t.is(upstream({ result: 'ok', status_class: '2xx' }), 2);
  t.is(total(samples, 'github_mirror_upstream_request_seconds_count'), 13);
  t.is(valueOf(samples, 'github_mirror_rate_limit_remaining_min', { resource: 'core' }), 0, 'the rate-limit fault answered remaining 0');

  // The cache: one entry, lookups per result, its size.
  t.is(valueOf(samples, 'github_mirror_cached_objects'), 1);
  t.true((valueOf(samples, 'github_mirror_cache_size') ?? 0) > 0);
  t.is(valueOf(samples, 'github_mirror_cache_operation_seconds_count', { backend: 'memory', operation: 'lookup', result: 'hit' }), 6);
  t.is(valueOf(samples, 'github_mirror_cache_operation_seconds_count', { backend: 'memory', operation: 'lookup', result: 'miss' }), 6);
  t.is(valueOf(samples, 'github_mirror_cache_operation_seconds_count', { backend: 'memory', operation: 'store', result: 'ok' }), 1);
  t.is(valueOf(samples, 'github_mirror_cache_backend', { backend: 'memory' }), 1);
  t.true(select(samples, 'process_resident_memory_bytes').length === 1, 'process metrics');
});

test.serial('quota counted by the mirror matches what GitHub charged', async (t) => {
  const token = `token ${secret(20)}1`;
  github.setResource('/repos/o/quota', { body: { q: 1 } });
  github.setResource('/repos/o/quota2', { body: { q: 2 } });
  const counted = async () => total(await scrape(mirror), 'github_mirror_upstream_requests_total', { quota: 'counted' });
  const before = await counted();
  const anonymousBefore = github.quotaSpent(undefined);
  for (const path of ['/repos/o/quota', '/repos/o/quota', '/repos/o/quota', '/repos/o/quota2', '/repos/o/quota2']) {
    await get(mirror, path, { authorization: token });
  }
  for (let i = 0; i < 3; i++) await get(mirror, '/repos/o/quota', {}); // anonymous: a 304 is charged too
  const charged = github.quotaSpent(token) + github.quotaSpent(undefined) - anonymousBefore;
  t.is(github.quotaSpent(token), 2, 'two 200s; the three 304s were free');
  t.is(charged, 5);
  t.is((await counted()) - before, charged);
});

test.serial('coalesced requests are counted: one upstream call, the others shared it', async (t) => {
  github.setResource('/repos/o/slow', { body: { slow: 1 } });
  github.injectFault('/repos/o/slow', { kind: 'latency', ms: 200 }, 1);
  const before = total(await scrape(mirror), 'github_mirror_coalesced_requests_total', { scope: 'local' });
  github.resetCalls();
  const results = await Promise.all(Array.from({ length: 6 }, () => get(mirror, '/repos/o/slow')));
  t.true(results.every((r) => r.status === 200));
  const calls = github.callsTo('/repos/o/slow').length;
  t.true(calls < 6, 'some requests shared a call');
  const after = total(await scrape(mirror), 'github_mirror_coalesced_requests_total', { scope: 'local' });
  t.is(after - before, 6 - calls);
});

test.serial('quota attribution: spent and saved per client (first User-Agent product), 304s and coalesced requests saved', async (t) => {
  const OCTOKIT = 'octokit-rest.js/20.0.2 octokit-core.js/5.0.1 Node.js/20';
  const PYGITHUB = 'PyGithub/2.1.1';
  github.setResource('/repos/o/attr-warm', { body: { w: 1 } });
  github.setResource('/repos/o/attr', { body: { a: 1 } });
  github.setResource('/repos/o/attr-slow', { body: { s: 1 } });
  // a name becomes a label after a few sightings: both clients are known before the counted traffic
  for (const ua of [OCTOKIT, PYGITHUB]) for (let i = 0; i < 3; i++) await get(mirror, '/repos/o/attr-warm', { authorization: A, 'user-agent': ua });
  const read = async () => {
    const samples = await scrape(mirror);
    return {
      spent: (client: string, quota: string) => total(samples, 'github_mirror_upstream_requests_total', { client, quota }),
      saved: (client: string, reason: string) => total(samples, 'github_mirror_quota_saved_total', { client, reason }),
      clients: new Set(select(samples, 'github_mirror_upstream_requests_total').map((x) => x.labels['client'])),
    };
  };
  const before = await read();
  await get(mirror, '/repos/o/attr', { authorization: A, 'user-agent': OCTOKIT });
  await get(mirror, '/repos/o/attr', { authorization: A, 'user-agent': OCTOKIT });
  await get(mirror, '/repos/o/attr', { authorization: A, 'user-agent': OCTOKIT });
  // anonymous: a partition of its own (a 200), then a 304 that is charged, not saved
  await get(mirror, '/repos/o/attr', { 'user-agent': OCTOKIT });
  await get(mirror, '/repos/o/attr', { 'user-agent': OCTOKIT });
  github.injectFault('/repos/o/attr-slow', { kind: 'latency', ms: 200 }, 1);
  github.resetCalls();
  await Promise.all(Array.from({ length: 6 }, () => get(mirror, '/repos/o/attr-slow', { authorization: A, 'user-agent': PYGITHUB })));
  const calls = github.callsTo('/repos/o/attr-slow').length;
  t.true(calls < 6);
  const after = await read();
  const delta = (f: (r: Awaited<ReturnType<typeof read>>) => number) => f(after) - f(before);
  t.is(delta((r) => r.spent('octokit-rest.js', 'counted')), 3, 'the 200, the anonymous 200 and the anonymous 304');
  t.is(delta((r) => r.spent('octokit-rest.js', 'free')), 2, 'two authenticated 304s');
  t.is(delta((r) => r.saved('octokit-rest.js', 'not_modified')), 2);
  t.is(delta((r) => r.saved('octokit-rest.js', 'coalesced')), 0);
  t.is(delta((r) => r.spent('PyGithub', 'counted')), calls);
  t.is(delta((r) => r.saved('PyGithub', 'coalesced')), 6 - calls);
  t.true(after.clients.has('octokit-rest.js') && after.clients.has('PyGithub'));
  t.true(after.clients.size <= 51);
});

test.serial('no label value holds a token, a URL path or a login', async (t) => {
  github.setUser(PAT, LOGIN);
  github.setResource(`/users/${LOGIN}`, { body: { login: LOGIN } });
  github.setResource(`/repos/${LOGIN}/secret-repo`, { body: { name: 'secret-repo' } });
  const tokens = [`token ${PAT}`, `Bearer ${FINE_GRAINED}`, `token ${CLASSIC}`];
  for (const authorization of tokens) {
    await get(mirror, '/user', { authorization });
    await get(mirror, `/users/${LOGIN}`, { authorization });
    await get(mirror, `/repos/${LOGIN}/secret-repo?access_token=${QUERY_TOKEN}`, { authorization });
    await get(mirror, `/api/v3/repos/${LOGIN}/secret-repo`, { authorization });
  }
  github.injectFault(`/repos/${LOGIN}/gone`, { kind: 'reset-mid-body' }, 1);
  await get(mirror, `/repos/${LOGIN}/gone`, { authorization: PAT_HEADER });
  const body = (await fetchText(`${mirror.url}/metrics`)).text;
  const samples = parseMetrics(body);
  t.true(samples.length > 100);
  const forbidden = [PAT, FINE_GRAINED, CLASSIC, QUERY_TOKEN, LOGIN, 'secret-repo', 'access_token', 'ghp_', 'github_pat_', github.url];
  for (const sample of samples) {
    for (const [name, value] of Object.entries(sample.labels)) {
      t.false(value.includes('/'), `${sample.name}{${name}="${value}"} looks like a path or URL`);
      for (const word of forbidden) t.false(value.includes(word), `${sample.name}{${name}="${value}"} holds ${word}`);
    }
  }
  for (const word of forbidden) t.false(body.includes(word), `the exposition holds ${word}`);
});

test.serial('/readyz reports backend, breakers, upstream state and restore progress; parts can be added', async (t) => {
  github.setResource('/repos/o/ready', { body: { ready: 1 } });
  await get(mirror, '/repos/o/ready');
  let r = await fetchText(`${mirror.url}/readyz`);
  t.is(r.status, 200);
  t.is(r.headers.get('cache-control'), 'no-store');
  let report = JSON.parse(r.text);
  t.like(report, { ready: true, state: 'ready', cache: { backend: 'memory' }, breakers: {}, restore: { state: 'none' } });
  t.is(report.upstream.url, github.url);
  t.is(report.upstream.state, 'ok');
  t.is(report.upstream.consecutiveFailures, 0);

  mirror.bus.emit({ name: 'snapshot.restore_progress', store: 'file', entries: 5, bytes: 50, durationMs: 20, outcome: 'in_progress', total: 10, restored: 5 });
  report = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text);
  t.like(report.restore, { state: 'in_progress', store: 'file', entries: 5, total: 10, restored: 5 });
  mirror.bus.emit({ name: 'snapshot.restored', store: 'file', entries: 10, bytes: 100, durationMs: 40, outcome: 'ok', total: 10, restored: 10 });
  report = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text);
  t.like(report.restore, { state: 'ok', entries: 10, restored: 10 });

  let warming = true;
  const remove = mirror.addReadiness('warmup', () => ({ ready: !warming, detail: 'loading' }));
  r = await fetchText(`${mirror.url}/readyz`);
  t.is(r.status, 503);
  t.deepEqual(JSON.parse(r.text).warmup, { ready: false, detail: 'loading' });
  warming = false;
  t.is((await fetchText(`${mirror.url}/readyz`)).status, 200);
  mirror.addReadiness('broken', () => {
    throw new Error('boom');
  });
  report = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text);
  t.deepEqual(report.broken, { error: 'boom' });
  t.true(report.ready, 'a failing part is reported, it does not take the mirror out');
  remove();
  mirror.addReadiness('broken', () => ({}));
  report = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text);
  t.is(report.warmup, undefined);
  t.throws(() => mirror.addReadiness('ready', () => ({})));
});

test.serial('an open upstream breaker: OFFLINE_* outcomes, breaker_state metric and /readyz', async (t) => {
  github.setResource('/repos/o/brk', { body: { brk: 1 } });
  t.is((await get(breakerMirror, '/repos/o/brk')).outcome, 'ONLINE_MISS');
  github.injectFault(/^\/repos\/o\/(brk|down)/, { kind: 'status', status: 502 });
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push((await get(breakerMirror, '/repos/o/down')).outcome ?? '');
  t.true(seen.includes('OFFLINE_MISS'), seen.join());
  t.deepEqual(await get(breakerMirror, '/repos/o/brk'), { status: 200, outcome: 'OFFLINE_HIT' });
  github.clearFaults();

  const samples = await scrape(breakerMirror);
  t.is(valueOf(samples, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'open' }), 1);
  t.is(valueOf(samples, 'github_mirror_breaker_state', { breaker: 'upstream', state: 'closed' }), 0);
  const counts = requestCounts(samples);
  t.is(counts['OFFLINE_HIT 200 GET'], 1);
  t.is(counts['OFFLINE_MISS 504 GET'], seen.filter((o) => o === 'OFFLINE_MISS').length);
  t.is(total(samples, 'github_mirror_upstream_requests_total', { result: 'offline' }), seen.filter((o) => o === 'OFFLINE_MISS').length + 1);

  const report = JSON.parse((await fetchText(`${breakerMirror.url}/readyz`)).text);
  t.like(report, { ready: true, breakers: { upstream: 'open' }, upstream: { state: 'offline' } });
});

test.serial('log lines: one per request with outcome, status and timing; no part of any token', async (t) => {
  github.setResource('/repos/o/log', { body: { log: 1 } });
  github.setUser(CLASSIC, LOGIN);
  const tokens = [`token ${PAT}`, `Bearer ${FINE_GRAINED}`, `token ${CLASSIC}`, `Bearer ${CLASSIC}`] as const;
  lines.length = 0;
  for (const authorization of tokens) {
    await get(loggedMirror, '/repos/o/log', { authorization });
    await get(loggedMirror, '/repos/o/log', { authorization });
    await get(loggedMirror, `/repos/o/log?access_token=${QUERY_TOKEN}&token=${QUERY_TOKEN}`, { authorization });
    await get(loggedMirror, '/user', { authorization });
    const post = await fetch(`${loggedMirror.url}/repos/o/log/issues?access_token=${QUERY_TOKEN}`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ token: PAT }),
    });
    await post.text();
  }
  github.injectFault('/repos/o/log', { kind: 'reset-mid-body' }, 1);
  await get(loggedMirror, '/repos/o/log', { authorization: tokens[0] });
  github.injectFault('/repos/o/log-down', { kind: 'status', status: 500 }, 1);
  await get(loggedMirror, `/repos/o/log-down?access_token=${QUERY_TOKEN}`, { authorization: tokens[0] });
  // A bad request target and a refused method are logged too.
  await fetchText(`${loggedMirror.url}/metrics`, { method: 'POST', headers: { authorization: tokens[1] } });

  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const requests = records.filter((r) => r['msg'] === 'request');
  t.is(requests.length, 4 * 5 + 3);
  for (const r of requests) {
    t.is(typeof r['method'], 'string');
    t.is(typeof r['path'], 'string');
    t.is(typeof r['status'], 'number');
    t.is(typeof r['outcome'], 'string');
    t.is(typeof r['ms'], 'number');
    t.truthy(r['reqId']);
  }
  t.true(requests.some((r) => r['outcome'] === 'ONLINE_HIT' && r['status'] === 200 && r['level'] === 30));
  t.true(requests.some((r) => r['outcome'] === 'API_ERROR_MISS' && r['status'] === 500 && r['level'] === 40), '5xx at warn');
  t.true(requests.some((r) => r['outcome'] === 'API_CONNECTION_ERROR_HIT'));
  t.true(requests.some((r) => typeof r['path'] === 'string' && r['path'].includes('access_token=[redacted]')));

  const text = lines.join('');
  for (const token of [PAT, FINE_GRAINED, CLASSIC, QUERY_TOKEN]) {
    const core = token.replace(/^(ghp_|github_pat_)/, '');
    for (let i = 0; i + 8 <= core.length; i++) {
      const part = core.slice(i, i + 8);
      if (text.includes(part)) {
        t.fail(`a log line holds part of a token: ${part}`);
        return;
      }
    }
  }
  t.pass();
});

test.serial('log lines: hashed_token is base64(SHA-256(token)) as in GitHub\'s audit log, absent without a token', async (t) => {
  github.setResource('/repos/o/hashed', { body: { h: 1 } });
  lines.length = 0;
  await get(loggedMirror, '/repos/o/hashed', { authorization: `token ${PAT}` });
  await get(loggedMirror, '/repos/o/hashed', { authorization: `Bearer ${FINE_GRAINED}` });
  await get(loggedMirror, '/repos/o/hashed', {});
  const requests = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((r) => r['msg'] === 'request');
  t.is(requests.length, 3);
  const audit = (token: string) => createHash('sha256').update(token).digest('base64');
  t.deepEqual(
    requests.map((r) => r['hashed_token']),
    [audit(PAT), audit(FINE_GRAINED), undefined],
  );
  t.false(lines.join('').includes(PAT));
});

test('the log level comes from log.level; createLogger honours it', async (t) => {
  const config = loadConfig({ env: { NODE_ENV: 'test', MIRROR_LOG_LEVEL: 'warn', MIRROR_UPSTREAM_URL: 'http://127.0.0.1:9' }, args: [] });
  const quiet = new Mirror(config);
  t.is(quiet.logger.level, 'warn');
  await quiet.stop();
  const written: string[] = [];
  const logger = createLogger('warn', { write: (line: string) => void written.push(line) });
  logger.info('not written');
  logger.warn({ authorization: 'token abcdef123456' }, 'written');
  t.is(written.length, 1);
  t.notRegex(written[0] as string, /abcdef123456/);
});

test('redactSecrets: token-like strings anywhere, readable text left alone', (t) => {
  const cases: Array<[string, string]> = [
    ['Authorization: token 0123456789abcdef0123456789abcdef01234567', 'Authorization: token [redacted]'],
    ['bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlLXBhcnQ', 'bearer [redacted]'],
    [`failed for ${PAT} at noon`, 'failed for [redacted] at noon'],
    [`x ${FINE_GRAINED}`, 'x [redacted]'],
    ['v1.0123456789abcdef0123456789abcdef01234567', '[redacted]'],
    ['/repos/o/r?access_token=abc&state=open&client_secret=s3cr3t', '/repos/o/r?access_token=[redacted]&state=open&client_secret=[redacted]'],
    ['redis://default:hunter2@redis:6379/0', 'redis://[redacted]@redis:6379/0'],
    ['{"token":"plain-secret","other":"x"}', '{"token":"[redacted]","other":"x"}'],
    ['Basic dXNlcjpnaHBfc2VjcmV0MTIzNDU2Nzg5MA==', 'Basic [redacted]'],
    ['token validation failed', 'token validation failed'],
    ['GET /repos/o/r/git/commits/0123456789abcdef0123456789abcdef01234567', 'GET /repos/o/r/git/commits/0123456789abcdef0123456789abcdef01234567'],
  ];
  for (const [input, expected] of cases) t.is(redactSecrets(input), expected, input);
});
