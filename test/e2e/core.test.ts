/**
 * The core mirror end to end: real sockets, the fake GitHub as upstream, a real mirror in front.
 */
import test from 'ava';
import { request as undiciRequest } from 'undici';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror, fetchText } from '../support/mirror-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let mirror: Mirror;
/** cache.shareAcrossCredentials off: every credential keeps its own entries, as before issue 16. */
let perCredential: Mirror;
const A = 'token aaaa1111';
const B = 'token bbbb2222';

test.before(async () => {
  github = await FakeGitHub.start();
  [mirror, perCredential] = await Promise.all([startMirror(github.url), startMirror(github.url, { MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: 'false' })]);
});

test.after.always(async () => {
  await mirror?.stop();
  await perCredential?.stop();
  await github?.close();
});

test.serial('miss, then a 304-revalidated hit that costs no quota, then a miss after a change', async (t) => {
  github.setResource('/repos/o/core', { body: { name: 'core', v: 1 } });
  const first = await fetchText(`${mirror.url}/repos/o/core`, { headers: { authorization: A } });
  t.is(first.status, 200);
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  t.is(github.quotaSpent(A), 1);

  const second = await fetchText(`${mirror.url}/repos/o/core`, { headers: { authorization: A } });
  t.is(second.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(second.text, first.text);
  t.is(github.quotaSpent(A), 1, 'the 304 cost nothing');
  const calls = github.callsTo('/repos/o/core');
  t.is(calls.at(-1)?.status, 304);
  t.truthy(calls.at(-1)?.headers['if-none-match']);
  t.not(second.headers.get('x-github-request-id'), first.headers.get('x-github-request-id'), 'fresh per-response headers');
  t.is(second.headers.get('x-ratelimit-remaining'), String(5000 - 1));
  t.regex(second.headers.get('cache-status') ?? '', /fwd=stale; fwd-status=304/);

  github.updateResource('/repos/o/core', { name: 'core', v: 2 });
  const third = await fetchText(`${mirror.url}/repos/o/core`, { headers: { authorization: A } });
  t.is(third.headers.get('x-cache'), 'ONLINE_MISS');
  t.is(JSON.parse(third.text).v, 2);
});

test.serial('a Last-Modified-only resource revalidates with If-Modified-Since', async (t) => {
  github.setResource('/repos/o/lm', { body: { lm: true }, validator: 'last-modified' });
  await fetchText(`${mirror.url}/repos/o/lm`, { headers: { authorization: A } });
  const hit = await fetchText(`${mirror.url}/repos/o/lm`, { headers: { authorization: A } });
  t.is(hit.headers.get('x-cache'), 'ONLINE_HIT');
  const last = github.callsTo('/repos/o/lm').at(-1);
  t.truthy(last?.headers['if-modified-since']);
  t.is(last?.headers['if-none-match'], undefined);
});

test.serial('tokens never see each other’s entries; no Authorization is its own partition', async (t) => {
  github.setResource('/repos/o/part', { body: { part: 1 } });
  github.resetCalls();
  await fetchText(`${perCredential.url}/repos/o/part`, { headers: { authorization: A } });
  const b = await fetchText(`${perCredential.url}/repos/o/part`, { headers: { authorization: B } });
  t.is(b.headers.get('x-cache'), 'ONLINE_MISS');
  const anon = await fetchText(`${perCredential.url}/repos/o/part`);
  t.is(anon.headers.get('x-cache'), 'ONLINE_MISS');
  const anon2 = await fetchText(`${perCredential.url}/repos/o/part`);
  t.is(anon2.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(github.quotaSpent(undefined), 2, 'anonymous 304s still cost');
  const upstreamAuth = github.callsTo('/repos/o/part').map((c) => c.credential);
  t.deepEqual(upstreamAuth, [A, B, undefined, undefined]);
});

test.serial('with shared bodies a token with no entry gets another’s body only through its own free 304; anonymous stays apart', async (t) => {
  github.setResource('/repos/o/part-shared', { body: { part: 2 } });
  github.resetCalls();
  const a = await fetchText(`${mirror.url}/repos/o/part-shared`, { headers: { authorization: A } });
  const b = await fetchText(`${mirror.url}/repos/o/part-shared`, { headers: { authorization: B } });
  t.is(b.headers.get('x-cache'), 'ONLINE_HIT');
  t.is(b.headers.get('cache-status'), 'github-mirror; fwd=stale; fwd-status=304; detail=shared');
  t.is(b.text, a.text);
  t.is(github.quotaSpent(B), 0);
  const [, toB] = github.callsTo('/repos/o/part-shared');
  t.is(toB?.credential, B);
  t.is(toB?.status, 304, 'GitHub confirmed the body for B itself');
  const anon = await fetchText(`${mirror.url}/repos/o/part-shared`);
  t.is(anon.headers.get('x-cache'), 'ONLINE_MISS', 'anonymous 304s are not free: no cross-credential revalidation');
  t.is(github.callsTo('/repos/o/part-shared').at(-1)?.headers['if-none-match'], undefined);
});

test.serial('the query string reaches upstream byte for byte and is part of the key', async (t) => {
  github.setResource('/search/issues', { body: { total_count: 1 } });
  const query = '?q=repo%3Ao%2Fr+is%3Aopen&b=2&a=1&a=0&x=%7E%20y';
  await fetchText(`${mirror.url}/search/issues${query}`, { headers: { authorization: A } });
  t.is(github.calls.at(-1)?.target, `/search/issues${query}`);
  const reordered = await fetchText(`${mirror.url}/search/issues?a=1&b=2&a=0&q=repo%3Ao%2Fr+is%3Aopen&x=%7E%20y`, { headers: { authorization: A } });
  t.is(reordered.headers.get('x-cache'), 'ONLINE_MISS', 'another order is another resource');
  const again = await fetchText(`${mirror.url}/search/issues${query}`, { headers: { authorization: A } });
  t.is(again.headers.get('x-cache'), 'ONLINE_HIT');
});

test.serial('Accept and X-GitHub-Api-Version are forwarded and part of the key', async (t) => {
  github.setResource('/repos/o/accept', { body: { a: 1 } });
  const h = { authorization: A, accept: 'application/vnd.github.raw+json', 'x-github-api-version': '2022-11-28' };
  await fetchText(`${mirror.url}/repos/o/accept`, { headers: h });
  t.is(github.calls.at(-1)?.headers['accept'], h.accept);
  t.is(github.calls.at(-1)?.headers['x-github-api-version'], h['x-github-api-version']);
  const otherAccept = await fetchText(`${mirror.url}/repos/o/accept`, { headers: { ...h, accept: 'application/json' } });
  t.is(otherAccept.headers.get('x-cache'), 'ONLINE_MISS');
  const otherVersion = await fetchText(`${mirror.url}/repos/o/accept`, { headers: { ...h, 'x-github-api-version': '2026-03-10' } });
  t.is(otherVersion.headers.get('x-cache'), 'ONLINE_MISS');
  t.is((await fetchText(`${mirror.url}/repos/o/accept`, { headers: h })).headers.get('x-cache'), 'ONLINE_HIT');
});

test.serial('client If-None-Match matching the entry gets 304 without a body', async (t) => {
  github.setResource('/repos/o/inm', { body: { inm: 1 } });
  const accept = 'application/vnd.github+json';
  const first = await fetchText(`${mirror.url}/repos/o/inm`, { headers: { authorization: A, accept } });
  const etag = first.headers.get('etag') ?? '';
  const response = await undiciRequest(`${mirror.url}/repos/o/inm`, { headers: { authorization: A, accept, 'if-none-match': etag } });
  const body = await response.body.text();
  t.is(response.statusCode, 304);
  t.is(body, '');
  t.is(response.headers['x-cache'], 'ONLINE_HIT');
  t.not(github.calls.at(-1)?.headers['if-none-match'], undefined);
});

test.serial('HEAD is answered from the GET entry', async (t) => {
  github.setResource('/repos/o/head', { body: { head: 1 } });
  const accept = 'application/vnd.github+json';
  await fetchText(`${mirror.url}/repos/o/head`, { headers: { authorization: A, accept } });
  const head = await undiciRequest(`${mirror.url}/repos/o/head`, { method: 'HEAD', headers: { authorization: A, accept } });
  await head.body.text();
  t.is(head.statusCode, 200);
  t.is(head.headers['x-cache'], 'ONLINE_HIT');
  t.is(github.calls.at(-1)?.method, 'GET');
});

test.serial('full-page guard: a new item on a next page is seen although page 1 still answers 304', async (t) => {
  github.setList('/repos/o/full/issues', Array.from({ length: 30 }, (_, i) => ({ number: i + 1 })));
  const first = await fetchText(`${mirror.url}/repos/o/full/issues`, { headers: { authorization: A } });
  t.is(JSON.parse(first.text).length, 30);
  t.is(first.headers.get('link'), null);
  github.addItem('/repos/o/full/issues', { number: 31 });
  const second = await fetchText(`${mirror.url}/repos/o/full/issues`, { headers: { authorization: A } });
  t.is(github.callsTo('/repos/o/full/issues').at(-1)?.headers['if-none-match'], undefined, 'fetched unconditionally');
  t.regex(second.headers.get('link') ?? '', /rel="next"/);
  t.true((second.headers.get('link') ?? '').includes(mirror.url), 'next link points at the mirror');
});

test.serial('writes pass through with body and headers and are never cached', async (t) => {
  for (const method of ['POST', 'PATCH', 'PUT', 'DELETE']) {
    const payload = JSON.stringify({ title: `via ${method}` });
    const response = await undiciRequest(`${mirror.url}/repos/o/r/issues?x=1`, {
      method: method as 'POST',
      headers: { authorization: A, 'content-type': 'application/json', 'x-custom': 'kept' },
      body: payload,
    });
    const text = await response.body.text();
    t.is(response.headers['x-cache'], 'ONLINE_MISS');
    const call = github.calls.at(-1);
    t.is(call?.method, method);
    t.is(call?.target, '/repos/o/r/issues?x=1');
    t.is(call?.body.toString(), payload);
    t.is(call?.headers['x-custom'], 'kept');
    t.is(call?.headers['content-type'], 'application/json');
    if (method !== 'DELETE') t.is(JSON.parse(text).body, payload);
  }
  const before = github.calls.length;
  await undiciRequest(`${mirror.url}/repos/o/r/issues?x=1`, { method: 'POST', headers: { authorization: A }, body: '{}' }).then((r) => r.body.text());
  t.is(github.calls.length, before + 1, 'a repeated write goes upstream again');
});

test.serial('the /api/v3 prefix is an alias and its links keep the prefix', async (t) => {
  github.setList('/repos/o/v3/issues', Array.from({ length: 5 }, (_, i) => ({ number: i + 1, url: `${github.url}/repos/o/v3/issues/${i + 1}` })));
  const page = await fetchText(`${mirror.url}/api/v3/repos/o/v3/issues?per_page=2`, { headers: { authorization: A } });
  t.is(github.calls.at(-1)?.target, '/repos/o/v3/issues?per_page=2');
  t.true((page.headers.get('link') ?? '').includes(`${mirror.url}/api/v3/repos/o/v3/issues?per_page=2&page=2`));
  t.is(JSON.parse(page.text)[0].url, `${mirror.url}/api/v3/repos/o/v3/issues/1`);
});

test.serial('gzip for clients that ask, identity for those that do not, from one entry', async (t) => {
  github.setResource('/repos/o/big', { body: { text: 'x'.repeat(5000) } });
  const plain = await undiciRequest(`${mirror.url}/repos/o/big`, { headers: { authorization: A } });
  const plainText = await plain.body.text();
  t.is(plain.headers['content-encoding'], undefined);
  const zipped = await undiciRequest(`${mirror.url}/repos/o/big`, { headers: { authorization: A, 'accept-encoding': 'gzip' } });
  const raw = Buffer.from(await zipped.body.arrayBuffer());
  t.is(zipped.headers['content-encoding'], 'gzip');
  t.is(zipped.headers['x-cache'], 'ONLINE_HIT');
  const { gunzipSync } = await import('node:zlib');
  t.is(gunzipSync(raw).toString(), plainText);
});

test.serial('health, readiness and metrics', async (t) => {
  t.is((await fetchText(`${mirror.url}/healthz`)).text, 'OK');
  const ready = await fetchText(`${mirror.url}/readyz`);
  t.is(ready.status, 200);
  t.is(JSON.parse(ready.text).cache.backend, 'memory');
  const metrics = await fetchText(`${mirror.url}/metrics`);
  t.regex(metrics.text, /request_latency_seconds_bucket\{[^}]*cache="ONLINE_HIT"/);
  t.false(metrics.text.includes('aaaa1111'));
});
