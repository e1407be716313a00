import test from 'ava';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import { FakeGitHub, type FakeGitHubOptions } from './fake-github.js';
import { githubEtag } from './github-etag.js';

const agent = new Agent({ keepAliveTimeout: 1_000, connections: 16 });
const servers: FakeGitHub[] = [];

test.after.always(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await agent.close();
});

async function startServer(options?: FakeGitHubOptions): Promise<FakeGitHub> {
  const server = await FakeGitHub.start(options);
  servers.push(server);
  return server;
}

interface Answer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
  json: () => unknown;
}

async function call(
  server: FakeGitHub,
  target: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const response = await request(`${server.url}${target}`, {
    dispatcher: agent,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    body: options.body ?? null,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return {
    status: response.statusCode,
    headers: response.headers,
    body,
    json: () => JSON.parse(body.toString('utf8')) as unknown,
  };
}

function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

const TOKEN = 'token ghp_test_one';

test('every answer carries GitHub rate-limit and response headers', async (t) => {
  const gh = await startServer();
  gh.setResource('/repos/o/r', { body: { id: 1 } });
  const authed = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN } });
  t.is(authed.status, 200);
  t.deepEqual(authed.json(), { id: 1 });
  t.is(header(authed, 'x-ratelimit-limit'), '5000');
  t.is(header(authed, 'x-ratelimit-remaining'), '4999');
  t.is(header(authed, 'x-ratelimit-used'), '1');
  t.is(header(authed, 'x-ratelimit-resource'), 'core');
  t.regex(header(authed, 'x-ratelimit-reset') ?? '', /^\d{10}$/);
  t.truthy(header(authed, 'date'));
  t.is(header(authed, 'x-github-media-type'), 'github.v3; format=json');
  t.is(header(authed, 'cache-control'), 'private, max-age=60, s-maxage=60');
  t.is(header(authed, 'vary'), 'Accept, Authorization, Cookie, X-GitHub-OTP');
  t.truthy(header(authed, 'x-oauth-scopes'));
  t.is(header(authed, 'content-type'), 'application/json; charset=utf-8');
  t.is(header(authed, 'etag'), githubEtag({ authorization: TOKEN }, authed.body));

  const anonymous = await call(gh, '/repos/o/r');
  t.is(header(anonymous, 'x-ratelimit-limit'), '60');
  t.is(header(anonymous, 'x-ratelimit-remaining'), '59');
  t.is(header(anonymous, 'cache-control'), 'public, max-age=60, s-maxage=60');
  t.is(header(anonymous, 'x-oauth-scopes'), undefined);
  t.not(header(anonymous, 'x-github-request-id'), header(authed, 'x-github-request-id'));

  t.is(gh.calls.length, 2);
  t.is(gh.calls[0]?.credential, TOKEN);
  t.is(gh.calls[1]?.credential, undefined);
});

test('an authenticated 304 is free, an anonymous 304 costs a unit', async (t) => {
  const gh = await startServer();
  gh.setResource('/repos/o/r', { body: { id: 1 } });
  const first = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN } });
  const etag = header(first, 'etag') as string;

  const revalidated = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, 'if-none-match': etag } });
  t.is(revalidated.status, 304);
  t.is(revalidated.body.length, 0);
  t.is(header(revalidated, 'etag'), etag);
  t.is(header(revalidated, 'x-ratelimit-remaining'), '4999');
  t.is(header(revalidated, 'cache-control'), 'private, max-age=60, s-maxage=60');
  t.truthy(header(revalidated, 'vary'));
  t.is(gh.quotaSpent(TOKEN), 1);
  t.false(gh.calls[1]?.countedAgainstQuota);
  t.is(gh.calls[1]?.status, 304);

  // Anonymous requests have their own ETag (GitHub's formula hashes the Authorization header).
  const anonEtag = githubEtag({}, first.body);
  const anon = await call(gh, '/repos/o/r', { headers: { 'if-none-match': anonEtag } });
  t.is(anon.status, 304);
  t.is(header(anon, 'x-ratelimit-remaining'), '59');
  t.is(gh.quotaSpent(), 1);
  t.is(gh.totalQuotaSpent(), 2);

  gh.resetCalls();
  t.is(gh.calls.length, 0);
  t.is(gh.quotaSpent(TOKEN), 0);
  t.is(gh.totalQuotaSpent(), 0);
});

test('an exhausted quota answers 403 with remaining 0 and costs nothing more', async (t) => {
  const gh = await startServer({ quota: 2, anonymousQuota: 1 });
  gh.setResource('/a', { body: { a: 1 } });
  t.is((await call(gh, '/a', { headers: { authorization: TOKEN } })).status, 200);
  t.is((await call(gh, '/a', { headers: { authorization: TOKEN } })).status, 200);
  const limited = await call(gh, '/a', { headers: { authorization: TOKEN } });
  t.is(limited.status, 403);
  t.is(header(limited, 'x-ratelimit-remaining'), '0');
  t.regex((limited.json() as { message: string }).message, /^API rate limit exceeded for /);
  t.is(gh.quotaSpent(TOKEN), 2);
  // Another credential has its own quota.
  t.is((await call(gh, '/a', { headers: { authorization: 'Bearer other' } })).status, 200);
  t.is((await call(gh, '/a')).status, 200);
  t.is((await call(gh, '/a')).status, 403);
  t.is(gh.quotaSpent(), 1);
});

test('strong, weak and Last-Modified validators answer 304 as GitHub does', async (t) => {
  const gh = await startServer();
  gh.setResource('/strong', { body: { s: 1 }, validator: 'strong' });
  gh.setResource('/weak', { body: { w: 1 }, validator: 'weak' });
  gh.setResource('/lm', { body: { l: 1 }, validator: 'last-modified' });
  gh.setResource('/both', { body: { b: 1 }, validator: 'both' });
  gh.setResource('/none', { body: { n: 1 }, validator: 'none' });
  const auth = { authorization: TOKEN };

  const strong = await call(gh, '/strong', { headers: auth });
  const strongTag = header(strong, 'etag') as string;
  t.is(strongTag, githubEtag(auth, strong.body, { weak: false }));
  t.is((await call(gh, '/strong', { headers: { ...auth, 'if-none-match': `"nope", ${strongTag}` } })).status, 304);
  t.is((await call(gh, '/strong', { headers: { ...auth, 'if-none-match': `W/${strongTag}` } })).status, 304);
  t.is((await call(gh, '/strong', { headers: { ...auth, 'if-none-match': '*' } })).status, 304);
  t.is((await call(gh, '/strong', { headers: { ...auth, 'if-none-match': '"other"' } })).status, 200);

  const weak = await call(gh, '/weak', { headers: auth });
  const weakTag = header(weak, 'etag') as string;
  t.is(weakTag, githubEtag(auth, weak.body));
  t.is((await call(gh, '/weak', { headers: { ...auth, 'if-none-match': weakTag } })).status, 304);
  t.is((await call(gh, '/weak', { headers: { ...auth, 'if-none-match': weakTag.slice(2) } })).status, 304);

  const lm = await call(gh, '/lm', { headers: auth });
  t.is(header(lm, 'etag'), undefined);
  const lastModified = header(lm, 'last-modified') as string;
  t.truthy(lastModified);
  const notModified = await call(gh, '/lm', { headers: { ...auth, 'if-modified-since': lastModified } });
  t.is(notModified.status, 304);
  t.is(header(notModified, 'last-modified'), lastModified);
  const earlier = new Date(Date.parse(lastModified) - 5000).toUTCString();
  t.is((await call(gh, '/lm', { headers: { ...auth, 'if-modified-since': earlier } })).status, 200);

  // If-None-Match wins over If-Modified-Since.
  const both = await call(gh, '/both', { headers: auth });
  t.truthy(header(both, 'etag'));
  const bothLm = header(both, 'last-modified') as string;
  t.is(
    (await call(gh, '/both', { headers: { ...auth, 'if-none-match': '"stale"', 'if-modified-since': bothLm } })).status,
    200,
  );
  t.is((await call(gh, '/both', { headers: { ...auth, 'if-modified-since': bothLm } })).status, 304);

  const none = await call(gh, '/none', { headers: auth });
  t.is(header(none, 'etag'), undefined);
  t.is(header(none, 'last-modified'), undefined);
});

test('updateResource gives a new ETag and a later Last-Modified; deleteResource answers 404', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: { v: 1 }, validator: 'both' });
  const before = await call(gh, '/r', { headers: { authorization: TOKEN } });
  gh.updateResource('/r', { v: 2 });
  const after = await call(gh, '/r', { headers: { authorization: TOKEN, 'if-none-match': header(before, 'etag') as string } });
  t.is(after.status, 200);
  t.deepEqual(after.json(), { v: 2 });
  t.not(header(after, 'etag'), header(before, 'etag'));
  const beforeLm = Date.parse(header(before, 'last-modified') as string);
  const afterLm = Date.parse(header(after, 'last-modified') as string);
  t.true(afterLm >= beforeLm + 1000);
  const since = await call(gh, '/r', {
    headers: { authorization: TOKEN, 'if-modified-since': header(before, 'last-modified') as string },
  });
  t.is(since.status, 200);

  gh.deleteResource('/r');
  const gone = await call(gh, '/r', { headers: { authorization: TOKEN } });
  t.is(gone.status, 404);
  t.deepEqual(gone.json(), { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  t.true(gh.callsTo('/r').every((c) => c.countedAgainstQuota));
  t.is(gh.quotaSpent(TOKEN), 4);
});

test('a resource answers any query; strings, buffers, status, content type and headers are honoured', async (t) => {
  const gh = await startServer();
  gh.setResource('/raw', {
    body: '# hello',
    contentType: 'application/vnd.github.raw; charset=utf-8',
    headers: { 'X-Custom': 'yes' },
  });
  gh.setResource('/bin', { body: Buffer.from([1, 2, 3]), contentType: 'application/octet-stream', status: 203 });
  const raw = await call(gh, '/raw?ref=main&x=1');
  t.is(raw.body.toString(), '# hello');
  t.is(header(raw, 'content-type'), 'application/vnd.github.raw; charset=utf-8');
  t.is(header(raw, 'x-custom'), 'yes');
  const bin = await call(gh, '/bin');
  t.is(bin.status, 203);
  t.deepEqual([...bin.body], [1, 2, 3]);
  t.is(gh.calls[0]?.target, '/raw?ref=main&x=1');
  t.is(gh.callsTo('/raw').length, 1);
});

test('lists paginate with absolute Link headers keeping the other query parameters in order', async (t) => {
  const gh = await startServer();
  const items = Array.from({ length: 7 }, (_, i) => ({ n: i + 1 }));
  gh.setList('/repos/o/r/issues', items);

  const page1 = await call(gh, '/repos/o/r/issues?state=all&per_page=3&sort=created');
  t.deepEqual(page1.json(), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  const base = `${gh.url}/repos/o/r/issues`;
  t.is(
    header(page1, 'link'),
    `<${base}?state=all&per_page=3&sort=created&page=2>; rel="next", ` +
      `<${base}?state=all&per_page=3&sort=created&page=3>; rel="last"`,
  );

  const page2 = await call(gh, '/repos/o/r/issues?state=all&page=2&per_page=3&sort=created');
  t.deepEqual(page2.json(), [{ n: 4 }, { n: 5 }, { n: 6 }]);
  t.is(
    header(page2, 'link'),
    `<${base}?state=all&page=1&per_page=3&sort=created>; rel="prev", ` +
      `<${base}?state=all&page=3&per_page=3&sort=created>; rel="next", ` +
      `<${base}?state=all&page=3&per_page=3&sort=created>; rel="last", ` +
      `<${base}?state=all&page=1&per_page=3&sort=created>; rel="first"`,
  );

  const page3 = await call(gh, '/repos/o/r/issues?per_page=3&page=3');
  t.deepEqual(page3.json(), [{ n: 7 }]);
  t.is(header(page3, 'link'), `<${base}?per_page=3&page=2>; rel="prev", <${base}?per_page=3&page=1>; rel="first"`);

  // Defaults: 30 per page, one page, no Link header.
  const all = await call(gh, '/repos/o/r/issues');
  t.is((all.json() as unknown[]).length, 7);
  t.is(header(all, 'link'), undefined);

  // per_page is capped at 100.
  gh.setList('/big', Array.from({ length: 150 }, (_, i) => i));
  const big = await call(gh, '/big?per_page=500');
  t.is((big.json() as unknown[]).length, 100);
  t.is(header(big, 'link'), `<${gh.url}/big?per_page=500&page=2>; rel="next", <${gh.url}/big?per_page=500&page=2>; rel="last"`);
});

test('adding an item past a full page leaves page 1 and its ETag unchanged', async (t) => {
  const gh = await startServer();
  gh.setList('/l', [1, 2, 3]);
  const before = await call(gh, '/l?per_page=3', { headers: { authorization: TOKEN } });
  t.is(header(before, 'link'), undefined);
  const etag = header(before, 'etag') as string;
  t.is(etag, githubEtag({ authorization: TOKEN }, before.body));

  gh.addItem('/l', 4);
  const revalidated = await call(gh, '/l?per_page=3', { headers: { authorization: TOKEN, 'if-none-match': etag } });
  t.is(revalidated.status, 304);
  const fresh = await call(gh, '/l?per_page=3', { headers: { authorization: TOKEN } });
  t.is(header(fresh, 'etag'), etag);
  t.regex(header(fresh, 'link') ?? '', /rel="next"/);
  const page2 = await call(gh, '/l?per_page=3&page=2');
  t.deepEqual(page2.json(), [4]);

  // A page that did change gets a new ETag.
  const whole = await call(gh, '/l', { headers: { authorization: TOKEN, 'if-none-match': etag } });
  t.is(whole.status, 200);
  t.deepEqual(whole.json(), [1, 2, 3, 4]);
});

test('gzips large bodies only when asked', async (t) => {
  const gh = await startServer();
  const big = { text: 'x'.repeat(4000) };
  gh.setResource('/big', { body: big });
  gh.setResource('/small', { body: { a: 1 } });

  const zipped = await call(gh, '/big', { headers: { 'accept-encoding': 'gzip, deflate' } });
  t.is(header(zipped, 'content-encoding'), 'gzip');
  t.regex(header(zipped, 'vary') ?? '', /Accept-Encoding/);
  t.deepEqual(JSON.parse(gunzipSync(zipped.body).toString()), big);
  t.is(Number(header(zipped, 'content-length')), zipped.body.length);

  const plain = await call(gh, '/big');
  t.is(header(plain, 'content-encoding'), undefined);
  t.deepEqual(plain.json(), big);
  t.is(header(zipped, 'etag'), header(plain, 'etag'));

  const small = await call(gh, '/small', { headers: { 'accept-encoding': 'gzip' } });
  t.is(header(small, 'content-encoding'), undefined);
  t.deepEqual(small.json(), { a: 1 });

  const off = await startServer({ gzip: false });
  off.setResource('/big', { body: big });
  const never = await call(off, '/big', { headers: { 'accept-encoding': 'gzip' } });
  t.is(header(never, 'content-encoding'), undefined);
});

test('status faults answer for the given number of requests and 5xx costs nothing', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: { ok: true } });
  gh.injectFault('/r', { kind: 'status', status: 502 }, 2);
  t.is((await call(gh, '/r', { headers: { authorization: TOKEN } })).status, 502);
  t.is((await call(gh, '/r?x=1', { headers: { authorization: TOKEN } })).status, 502);
  t.is((await call(gh, '/r', { headers: { authorization: TOKEN } })).status, 200);
  t.is(gh.quotaSpent(TOKEN), 1);
  t.deepEqual(
    gh.calls.map((c) => c.status),
    [502, 502, 200],
  );

  gh.injectFault(/^\/r\?boom/, { kind: 'status', status: 500, body: { message: 'custom' } });
  const custom = await call(gh, '/r?boom=1');
  t.is(custom.status, 500);
  t.deepEqual(custom.json(), { message: 'custom' });
  t.is((await call(gh, '/r?fine=1')).status, 200);
  gh.clearFaults();
  t.is((await call(gh, '/r?boom=1')).status, 200);
});

test('a rate-limit fault looks like GitHub primary rate limiting and costs nothing', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: {} });
  gh.injectFault('/r', { kind: 'rate-limit' }, 1);
  const limited = await call(gh, '/r', { headers: { authorization: TOKEN } });
  t.is(limited.status, 403);
  t.is(header(limited, 'x-ratelimit-remaining'), '0');
  t.regex((limited.json() as { message: string }).message, /^API rate limit exceeded for /);
  t.is(gh.quotaSpent(TOKEN), 0);
  t.false(gh.calls[0]?.countedAgainstQuota);
});

test('a secondary rate limit carries retry-after', async (t) => {
  const gh = await startServer();
  gh.injectFault(/search/, { kind: 'secondary-rate-limit', retryAfterSeconds: 42 }, 1);
  const limited = await call(gh, '/search/issues?q=x', { headers: { authorization: TOKEN } });
  t.is(limited.status, 429);
  t.is(header(limited, 'retry-after'), '42');
  t.regex((limited.json() as { message: string }).message, /^You have exceeded a secondary rate limit/);
  t.is(gh.quotaSpent(TOKEN), 0);
  t.is((await call(gh, '/search/issues?q=x', { headers: { authorization: TOKEN } })).status, 404);
});

test('reset-mid-body makes the client see an error', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: { text: 'y'.repeat(5000) } });
  gh.injectFault('/r', { kind: 'reset-mid-body' }, 1);
  const response = await request(`${gh.url}/r`, { dispatcher: agent });
  t.is(response.statusCode, 200);
  await t.throwsAsync(response.body.text());
  gh.injectFault('/missing', { kind: 'reset-mid-body' }, 1);
  await t.throwsAsync(async () => {
    const r = await request(`${gh.url}/missing`, { dispatcher: agent });
    await r.body.text();
  });
  // The next request is answered normally.
  t.is((await call(gh, '/r')).status, 200);
});

test('a hanging request never gets an answer and close() still resolves', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: {} });
  gh.injectFault('/r', { kind: 'hang' });
  const pending = request(`${gh.url}/r`, { dispatcher: agent }).then(
    () => 'answered',
    () => 'failed',
  );
  while (gh.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  t.is(gh.calls[0]?.status, 0);
  await gh.close();
  t.is(await pending, 'failed');
});

test('clearFaults drops hanging requests', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: {} });
  gh.injectFault('/r', { kind: 'hang' });
  const pending = request(`${gh.url}/r`, { dispatcher: agent }).then(
    () => 'answered',
    () => 'failed',
  );
  while (gh.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  gh.clearFaults();
  t.is(await pending, 'failed');
  t.is((await call(gh, '/r')).status, 200);
});

test('latency (option, setLatency and fault) delays without changing the answer', async (t) => {
  const gh = await startServer({ latencyMs: 5 });
  gh.setResource('/r', { body: { ok: 1 } });
  t.is((await call(gh, '/r')).status, 200);
  gh.setLatency(0);
  gh.injectFault('/r', { kind: 'latency', ms: 20 }, 1);
  const delayed = await call(gh, '/r');
  t.is(delayed.status, 200);
  t.deepEqual(delayed.json(), { ok: 1 });
  t.is(gh.calls.length, 2);

  // A pending latency timer is cleared by close().
  const slow = await startServer({ latencyMs: 60_000 });
  slow.setResource('/r', { body: {} });
  const pending = request(`${slow.url}/r`, { dispatcher: agent }).then(
    () => 'answered',
    () => 'failed',
  );
  while (slow.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await slow.close();
  t.is(await pending, 'failed');
});

test('writes echo what was received, cost a unit and change nothing', async (t) => {
  const gh = await startServer();
  gh.setResource('/repos/o/r/issues/1', { body: { title: 'a' } });
  const posted = await call(gh, '/repos/o/r/issues?z=1&a=%2F', {
    method: 'POST',
    headers: { authorization: TOKEN, 'content-type': 'application/json' },
    body: '{"title":"new"}',
  });
  t.is(posted.status, 201);
  const echo = posted.json() as { method: string; path: string; query: string; headers: Record<string, string>; body: string };
  t.is(echo.method, 'POST');
  t.is(echo.path, '/repos/o/r/issues');
  t.is(echo.query, 'z=1&a=%2F');
  t.is(echo.headers['content-type'], 'application/json');
  t.is(echo.body, '{"title":"new"}');
  t.is(gh.calls[0]?.target, '/repos/o/r/issues?z=1&a=%2F');
  t.is(gh.calls[0]?.body.toString(), '{"title":"new"}');

  const patched = await call(gh, '/repos/o/r/issues/1', { method: 'PATCH', headers: { authorization: TOKEN }, body: '{"title":"b"}' });
  t.is(patched.status, 200);
  const deleted = await call(gh, '/repos/o/r/issues/1', { method: 'DELETE', headers: { authorization: TOKEN } });
  t.is(deleted.status, 204);
  t.is(deleted.body.length, 0);
  t.deepEqual((await call(gh, '/repos/o/r/issues/1')).json(), { title: 'a' });
  t.is(gh.quotaSpent(TOKEN), 3);
});

test('setUser answers GET /user for that token', async (t) => {
  const gh = await startServer();
  gh.setUser('ghp_alice', 'alice');
  const viaToken = await call(gh, '/user', { headers: { authorization: 'token ghp_alice' } });
  t.is(viaToken.status, 200);
  t.is((viaToken.json() as { login: string }).login, 'alice');
  const viaBearer = await call(gh, '/user', { headers: { authorization: 'Bearer ghp_alice' } });
  t.is((viaBearer.json() as { login: string }).login, 'alice');
  t.is((await call(gh, '/user', { headers: { authorization: 'token nobody' } })).status, 404);
  t.is((await call(gh, '/user')).status, 401);
});

test('loadFixtures registers the octokit fixtures with URLs on this server', async (t) => {
  const gh = await startServer();
  const paths = gh.loadFixtures();
  t.true(paths.includes('/repos/octokit-fixture-org/hello-world'));
  t.is(new Set(paths).size, paths.length);
  const repo = await call(gh, '/repos/octokit-fixture-org/hello-world', { headers: { authorization: TOKEN } });
  t.is(repo.status, 200);
  const body = repo.json() as { full_name: string; url: string };
  t.is(body.full_name, 'octokit-fixture-org/hello-world');
  t.is(body.url, `${gh.url}/repos/octokit-fixture-org/hello-world`);
  t.false(repo.body.toString().includes('https://api.github.com'));
  t.is(header(repo, 'etag'), githubEtag({ authorization: TOKEN }, repo.body));
  t.truthy(header(repo, 'last-modified'));
  t.is(header(repo, 'x-accepted-oauth-scopes'), 'repo');
  t.is(header(repo, 'x-ratelimit-remaining'), '4999');

  const revalidated = await call(gh, '/repos/octokit-fixture-org/hello-world', {
    headers: { authorization: TOKEN, 'if-none-match': header(repo, 'etag') as string },
  });
  t.is(revalidated.status, 304);

  const raw = await call(gh, '/repos/octokit-fixture-org/hello-world/contents/README.md');
  t.is(header(raw, 'content-type'), 'application/vnd.github.v3.raw; charset=utf-8');
  t.is(raw.body.toString(), '# hello-world');

  const paged = await call(gh, '/repos/octokit-fixture-org/paginate-issues/issues?per_page=3');
  t.regex(header(paged, 'link') ?? '', new RegExp(`^<${gh.url}/repositories/1000/issues\\?per_page=3&page=2>`));
});

test('HEAD answers headers only', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: { a: 'b' } });
  const head = await call(gh, '/r', { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.body.length, 0);
  t.truthy(header(head, 'etag'));
});

// ---- GitHub's ETag formula, per-credential answers, access rules, pretty-printing -------------------

const OTHER = 'Bearer ghp_test_two';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

test('githubEtag hashes Accept, Authorization and Cookie (present ones, in that order, each with ":") then the body', (t) => {
  const body = '{"id":1}';
  t.is(githubEtag({}, body), `W/"${sha256Hex(body)}"`);
  t.is(githubEtag({}, body, { weak: false }), `"${sha256Hex(body)}"`);
  t.is(githubEtag({ authorization: TOKEN }, body), `W/"${sha256Hex(`${TOKEN}:${body}`)}"`);
  // Object key order and header name case do not matter; the hash order is fixed.
  t.is(
    githubEtag({ Cookie: 'c=1', 'User-Agent': 'x', Authorization: TOKEN, ACCEPT: '*/*' }, Buffer.from(body)),
    `W/"${sha256Hex(`*/*:${TOKEN}:c=1:${body}`)}"`,
  );
  // A repeated header contributes each value.
  t.is(githubEtag({ accept: ['a', 'b'] }, body), `W/"${sha256Hex(`a:b:${body}`)}"`);
  t.is(githubEtag({ accept: undefined, authorization: TOKEN }, body), githubEtag({ authorization: TOKEN }, body));
});

test('one body has one ETag per token, Accept and Cookie; another credential’s ETag gets the body and costs a unit', async (t) => {
  const gh = await startServer();
  gh.setResource('/repos/o/r', { body: { id: 1 } });
  const body = JSON.stringify({ id: 1 });

  const one = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN } });
  const two = await call(gh, '/repos/o/r', { headers: { authorization: OTHER } });
  const anon = await call(gh, '/repos/o/r');
  const typed = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, accept: 'application/vnd.github+json', cookie: 'a=b' } });
  t.is(one.body.toString(), body);
  t.is(two.body.toString(), body);
  t.is(header(one, 'etag'), githubEtag({ authorization: TOKEN }, body));
  t.is(header(two, 'etag'), githubEtag({ authorization: OTHER }, body));
  t.is(header(anon, 'etag'), githubEtag({}, body));
  t.is(header(typed, 'etag'), githubEtag({ accept: 'application/vnd.github+json', authorization: TOKEN, cookie: 'a=b' }, body));
  t.is(new Set([one, two, anon, typed].map((answer) => header(answer, 'etag'))).size, 4);

  const repeated = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, accept: ['a/b', 'c/d'] as unknown as string } });
  t.is(header(repeated, 'etag'), githubEtag({ accept: ['a/b', 'c/d'], authorization: TOKEN }, body));

  gh.resetCalls();
  const crossed = await call(gh, '/repos/o/r', { headers: { authorization: OTHER, 'if-none-match': header(one, 'etag') as string } });
  t.is(crossed.status, 200);
  t.is(gh.quotaSpent(OTHER), 1);
  // Computing the other credential's ETag for the same body revalidates it for free.
  const computed = await call(gh, '/repos/o/r', { headers: { authorization: OTHER, 'if-none-match': githubEtag({ authorization: OTHER }, body) } });
  t.is(computed.status, 304);
  t.is(gh.quotaSpent(OTHER), 1);
  const wrongAccept = await call(gh, '/repos/o/r', {
    headers: { authorization: TOKEN, accept: 'application/json', 'if-none-match': header(one, 'etag') as string },
  });
  t.is(wrongAccept.status, 200);
});

test('If-None-Match takes a list with the weak comparison and the 304 carries the ETag that matched', async (t) => {
  const gh = await startServer();
  gh.setResource('/r', { body: { v: 1 } });
  const etag = githubEtag({ authorization: TOKEN }, '{"v":1}');
  const strongForm = etag.slice(2);
  const others = [githubEtag({ authorization: OTHER }, '{"v":1}'), githubEtag({ authorization: TOKEN }, '{"v":0}'), '"x"'];

  const listed = await call(gh, '/r', { headers: { authorization: TOKEN, 'if-none-match': [...others, strongForm].join(', ') } });
  t.is(listed.status, 304);
  t.is(header(listed, 'etag'), etag);
  const tight = await call(gh, '/r', { headers: { authorization: TOKEN, 'if-none-match': `${others[0] as string},${etag}` } });
  t.is(tight.status, 304);
  t.is(header(tight, 'etag'), etag);
  const none = await call(gh, '/r', { headers: { authorization: TOKEN, 'if-none-match': others.join(', ') } });
  t.is(none.status, 200);
  t.is(header(none, 'etag'), etag);
  t.is(gh.quotaSpent(TOKEN), 1);

  // Anonymous 304s cost a unit; authenticated ones do not.
  const anonymous = await call(gh, '/r', { headers: { 'if-none-match': `"x", ${githubEtag({}, '{"v":1}')}` } });
  t.is(anonymous.status, 304);
  t.is(gh.quotaSpent(), 1);
  t.true(gh.calls.at(-1)?.countedAgainstQuota);
});

test('curl, Wget, Safari and Firefox user agents get pretty-printed JSON that does not hash to its ETag', async (t) => {
  const gh = await startServer();
  const data = { id: 1, name: 'r', owner: { login: 'o' }, topics: ['a', 'b'] };
  const compact = JSON.stringify(data);
  gh.setResource('/repos/o/r', { body: data });
  const etag = githubEtag({ authorization: TOKEN }, compact);

  for (const userAgent of ['curl/8.5.0', 'Wget/1.21', 'Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15', 'Mozilla/5.0 Gecko/20100101 Firefox/128.0']) {
    const answer = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, 'user-agent': userAgent } });
    t.is(answer.status, 200, userAgent);
    t.is(answer.body.toString(), JSON.stringify(data, null, 2), userAgent);
    t.deepEqual(answer.json(), data);
    t.is(header(answer, 'etag'), etag, userAgent);
    t.not(githubEtag({ authorization: TOKEN }, answer.body), etag);
    t.is(Number(header(answer, 'content-length')), answer.body.length);
    const revalidated = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, 'user-agent': userAgent, 'if-none-match': etag } });
    t.is(revalidated.status, 304, userAgent);
  }
  // Case-sensitive, as GitHub: these stay compact.
  for (const userAgent of ['cUrL/8.5.0', 'CURL', 'wget/1.21', 'safari', 'firefox', 'octokit-rest.js/21', 'node']) {
    const answer = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN, 'user-agent': userAgent } });
    t.is(answer.body.toString(), compact, userAgent);
  }
  // Lists, errors and gzipped bodies too; non-JSON bodies are left alone.
  gh.setList('/l', [{ n: 1 }]);
  t.is((await call(gh, '/l', { headers: { 'user-agent': 'curl/8' } })).body.toString(), JSON.stringify([{ n: 1 }], null, 2));
  const missing = await call(gh, '/missing', { headers: { 'user-agent': 'curl/8' } });
  t.is(missing.status, 404);
  t.is(missing.body.toString(), JSON.stringify({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest' }, null, 2));
  const big = { text: 'x'.repeat(4000), list: [1, 2, 3] };
  gh.setResource('/big', { body: big });
  const zipped = await call(gh, '/big', { headers: { 'user-agent': 'curl/8', 'accept-encoding': 'gzip' } });
  t.is(header(zipped, 'content-encoding'), 'gzip');
  t.is(gunzipSync(zipped.body).toString(), JSON.stringify(big, null, 2));
  t.is(header(zipped, 'etag'), githubEtag({}, JSON.stringify(big)));
  const plainZipped = await call(gh, '/big', { headers: { 'accept-encoding': 'gzip' } });
  t.is(gunzipSync(plainZipped.body).toString(), JSON.stringify(big));
  gh.setResource('/raw', { body: '{"a":1}', contentType: 'application/vnd.github.raw; charset=utf-8' });
  t.is((await call(gh, '/raw', { headers: { 'user-agent': 'curl/8' } })).body.toString(), '{"a":1}');
});

test('a credential without access gets 404 whatever its If-None-Match, and pays for it', async (t) => {
  const gh = await startServer();
  const repo = { id: 7, name: 'private', private: true };
  const body = JSON.stringify(repo);
  gh.setResource('/repos/o/private', { body: repo });
  gh.setList('/repos/o/private/issues', [{ n: 1 }]);
  gh.setResource('/repos/o/public', { body: { id: 8 } });
  gh.setAccess(/^\/repos\/o\/private(?:\/|$)/, { allow: ['ghp_test_one'] });

  const owner = await call(gh, '/repos/o/private', { headers: { authorization: TOKEN } });
  t.is(owner.status, 200);
  t.is(owner.body.toString(), body);
  // "Bearer X" is the same token X.
  t.is((await call(gh, '/repos/o/private', { headers: { authorization: 'Bearer ghp_test_one' } })).status, 200);
  t.is((await call(gh, '/repos/o/private/issues', { headers: { authorization: TOKEN } })).status, 200);

  gh.resetCalls();
  const guesses = [header(owner, 'etag') as string, githubEtag({ authorization: OTHER }, body), '*', undefined];
  for (const guess of guesses) {
    const headers: Record<string, string> = { authorization: OTHER };
    if (guess !== undefined) headers['if-none-match'] = guess;
    const denied = await call(gh, '/repos/o/private', { headers });
    t.is(denied.status, 404, guess ?? 'unconditional');
    t.deepEqual(denied.json(), { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    t.is(header(denied, 'etag'), undefined);
    t.is(header(denied, 'x-ratelimit-resource'), 'core');
  }
  t.is((await call(gh, '/repos/o/private', { method: 'HEAD', headers: { authorization: OTHER } })).status, 404);
  t.is((await call(gh, '/repos/o/private/issues', { headers: { authorization: OTHER, 'if-none-match': '*' } })).status, 404);
  t.is((await call(gh, '/repos/o/private', { headers: { 'if-none-match': githubEtag({}, body) } })).status, 404);
  t.is((await call(gh, '/repos/o/private/issues', { method: 'POST', headers: { authorization: OTHER }, body: '{}' })).status, 404);
  t.is(gh.quotaSpent(OTHER), guesses.length + 3);
  t.is(gh.quotaSpent(), 1);
  t.true(gh.calls.every((c) => c.countedAgainstQuota && c.status === 404));
  // Other paths are not affected.
  t.is((await call(gh, '/repos/o/public', { headers: { authorization: OTHER } })).status, 200);
  t.false(gh.canAccess('/repos/o/private', OTHER));
  t.true(gh.canAccess('/repos/o/private', TOKEN));
  t.false(gh.canAccess('/repos/o/private', undefined));

  // deny names who may not; rules add up; clearAccess lifts them.
  gh.setAccess('/repos/o/public', { deny: [OTHER] });
  t.is((await call(gh, '/repos/o/public', { headers: { authorization: OTHER } })).status, 404);
  t.is((await call(gh, '/repos/o/public', { headers: { authorization: TOKEN } })).status, 200);
  t.is((await call(gh, '/repos/o/public')).status, 200);
  gh.clearAccess();
  t.is((await call(gh, '/repos/o/private', { headers: { authorization: OTHER } })).status, 200);
  t.is((await call(gh, '/repos/o/public', { headers: { authorization: OTHER } })).status, 200);
});

test('a resource can render per token: each token gets its own body and ETag', async (t) => {
  const gh = await startServer();
  const repo = { id: 1, full_name: 'o/r' };
  const adminView = { permissions: { admin: true, push: true, pull: true } };
  const readView = { permissions: { admin: false, push: false, pull: true } };
  gh.setResource('/repos/o/r', { body: repo, perCredential: { [TOKEN]: adminView, ghp_test_two: readView } });

  const admin = await call(gh, '/repos/o/r', { headers: { authorization: TOKEN } });
  const reader = await call(gh, '/repos/o/r', { headers: { authorization: OTHER } });
  const anon = await call(gh, '/repos/o/r');
  const stranger = await call(gh, '/repos/o/r', { headers: { authorization: 'token ghp_stranger' } });
  t.deepEqual(admin.json(), { ...repo, ...adminView });
  t.deepEqual(reader.json(), { ...repo, ...readView });
  t.deepEqual(anon.json(), repo);
  t.deepEqual(stranger.json(), repo);
  t.is(header(admin, 'etag'), githubEtag({ authorization: TOKEN }, JSON.stringify({ ...repo, ...adminView })));
  t.is(header(reader, 'etag'), githubEtag({ authorization: OTHER }, JSON.stringify({ ...repo, ...readView })));
  t.is(header(stranger, 'etag'), githubEtag({ authorization: 'token ghp_stranger' }, JSON.stringify(repo)));

  // The ETag another token would get for the admin's body does not revalidate the reader's.
  gh.resetCalls();
  const crossed = await call(gh, '/repos/o/r', {
    headers: { authorization: OTHER, 'if-none-match': githubEtag({ authorization: OTHER }, admin.body) },
  });
  t.is(crossed.status, 200);
  t.deepEqual(crossed.json(), { ...repo, ...readView });
  const own = await call(gh, '/repos/o/r', { headers: { authorization: OTHER, 'if-none-match': header(reader, 'etag') as string } });
  t.is(own.status, 304);
  t.is(gh.quotaSpent(OTHER), 1);

  // An update keeps each token's fields; setPerCredential changes one token's view alone.
  gh.updateResource('/repos/o/r', { ...repo, description: 'new' });
  t.deepEqual((await call(gh, '/repos/o/r', { headers: { authorization: TOKEN } })).json(), { ...repo, description: 'new', ...adminView });
  gh.setPerCredential('/repos/o/r', 'ghp_test_two', adminView);
  const promoted = await call(gh, '/repos/o/r', { headers: { authorization: OTHER } });
  t.deepEqual(promoted.json(), { ...repo, description: 'new', ...adminView });
  gh.setPerCredential('/repos/o/r', 'ghp_test_two', undefined);
  t.deepEqual((await call(gh, '/repos/o/r', { headers: { authorization: OTHER } })).json(), { ...repo, description: 'new' });

  t.throws(() => gh.setResource('/s', { body: 'text', perCredential: { [TOKEN]: {} } }), { message: /object body/ });
  t.throws(() => gh.updateResource('/repos/o/r', [1, 2]), { message: /object body/ });
});

test('an empty list answers [] with the ETag of [] for that credential, so that ETag gets a 304', async (t) => {
  const gh = await startServer();
  gh.setList('/repos/o/r/pulls', []);
  for (const credential of [TOKEN, OTHER]) {
    const guess = githubEtag({ authorization: credential }, '[]');
    const first = await call(gh, '/repos/o/r/pulls', { headers: { authorization: credential, 'if-none-match': guess } });
    t.is(first.status, 304);
    t.is(header(first, 'etag'), guess);
    t.is(gh.quotaSpent(credential), 0);
    const plain = await call(gh, '/repos/o/r/pulls?per_page=100', { headers: { authorization: credential } });
    t.is(plain.body.toString(), '[]');
    t.is(header(plain, 'etag'), guess);
    t.is(header(plain, 'link'), undefined);
  }
  // Anonymous: the 304 costs a unit.
  const anonymous = await call(gh, '/repos/o/r/pulls', { headers: { 'if-none-match': githubEtag({}, '[]') } });
  t.is(anonymous.status, 304);
  t.is(gh.quotaSpent(), 1);
  // Once the list has an item, the guess is a miss.
  gh.addItem('/repos/o/r/pulls', { number: 1 });
  const filled = await call(gh, '/repos/o/r/pulls', { headers: { authorization: TOKEN, 'if-none-match': githubEtag({ authorization: TOKEN }, '[]') } });
  t.is(filled.status, 200);
  t.deepEqual(filled.json(), [{ number: 1 }]);
  // A page past the end is an empty list too.
  const past = await call(gh, '/repos/o/r/pulls?page=5', { headers: { authorization: TOKEN, 'if-none-match': githubEtag({ authorization: TOKEN }, '[]') } });
  t.is(past.status, 304);
});
