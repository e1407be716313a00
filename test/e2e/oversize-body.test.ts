/**
 * Issue 14, item 2: a body over upstream.maxBodyBytes is GitHub's answer, not an outage. The client
 * gets 502 UPSTREAM_BODY_TOO_LARGE with its own X-Cache (API_BODY_TOO_LARGE_MISS), an older cached
 * copy is not served in its place, /readyz keeps saying GitHub is up, and however many such answers
 * come (gzipped, as GitHub sends them) the upstream breaker stays closed for everyone else.
 */
import test from 'ava';
import { FakeGitHub } from '../support/fake-github.js';
import { fetchText, startMirror } from '../support/mirror-harness.js';
import { parseMetrics, total } from '../support/prometheus-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const LIMIT = 8192;

let github: FakeGitHub;
let mirror: Mirror;

test.before(async () => {
  github = await FakeGitHub.start();
  mirror = await startMirror(github.url, {
    MIRROR_UPSTREAM_MAX_BODY_BYTES: String(LIMIT),
    MIRROR_CACHE_MAX_ENTRY_BYTES: String(LIMIT),
    MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD: '3',
    MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE: '50',
  });
});

test.after.always(async () => {
  await mirror?.stop();
  await github?.close();
});

/** A JSON array whose text is larger than the limit but gzips far below it. */
function largeList(): unknown[] {
  return Array.from({ length: 400 }, (_, i) => ({ id: i, name: 'the same words again and again', i }));
}

test.serial('a gzipped body over the limit: 502 UPSTREAM_BODY_TOO_LARGE, no stale copy, breaker closed, /readyz up', async (t) => {
  t.true(JSON.stringify(largeList()).length > LIMIT);
  github.setResource('/repos/o/grows', { body: [{ id: 1 }] });
  const first = await fetchText(`${mirror.url}/repos/o/grows`, { headers: { authorization: 'token a' } });
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');

  github.updateResource('/repos/o/grows', largeList());
  github.setResource('/repos/o/large', { body: largeList() });
  const answers = [];
  answers.push(await fetchText(`${mirror.url}/repos/o/grows`, { headers: { authorization: 'token a' } }));
  for (let i = 0; i < 10; i++) answers.push(await fetchText(`${mirror.url}/repos/o/large`, { headers: { authorization: `token t${i}` } }));
  const gzipped = github.calls.filter((c) => c.target === '/repos/o/large').length;
  t.is(gzipped, 10, 'every request reached GitHub');
  for (const answer of answers) {
    t.is(answer.status, 502, answer.text);
    t.is(answer.headers.get('x-cache'), 'API_BODY_TOO_LARGE_MISS');
    t.is(answer.headers.get('cache-status'), 'github-mirror; fwd=miss; detail=api-body-too-large');
    t.like(JSON.parse(answer.text), { code: 'UPSTREAM_BODY_TOO_LARGE' });
  }

  const again = await fetchText(`${mirror.url}/repos/o/grows`, { headers: { authorization: 'token a' } });
  t.is(again.headers.get('x-cache'), 'API_BODY_TOO_LARGE_MISS', 'the outdated entry is dropped, never served instead');

  github.setResource('/repos/o/small', { body: { small: true } });
  const other = await fetchText(`${mirror.url}/repos/o/small`, { headers: { authorization: 'token b' } });
  t.is(other.status, 200);
  t.is(other.headers.get('x-cache'), 'ONLINE_MISS', 'the upstream breaker did not open');

  const ready = JSON.parse((await fetchText(`${mirror.url}/readyz`)).text) as { upstream: { state: string; consecutiveFailures: number }; breakers: Record<string, string> };
  t.is(ready.upstream.state, 'ok');
  t.is(ready.upstream.consecutiveFailures, 0);
  t.not(ready.breakers['upstream'], 'open');

  const metrics = (await fetchText(`${mirror.url}/metrics`)).text;
  // summed over the client label (a User-Agent's first sightings count as client="other")
  t.is(total(parseMetrics(metrics), 'github_mirror_upstream_requests_total', { result: 'body_too_large' }), 12);
});
