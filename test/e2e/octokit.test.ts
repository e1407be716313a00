import test from 'ava';
import { Octokit } from '@octokit/rest';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let mirror: Mirror;

test.before(async () => {
  github = await FakeGitHub.start();
  mirror = await startMirror(github.url);
});

test.after.always(async () => {
  await mirror?.stop();
  await github?.close();
});

test('octokit.paginate over a multi-page list returns every item, every page through the mirror', async (t) => {
  const items = Array.from({ length: 95 }, (_, i) => ({ id: i + 1, number: i + 1, title: `issue ${i + 1}`, state: 'open' }));
  github.setList('/repos/octokit-fixture-org/hello-world/issues', items);
  const octokit = new Octokit({ auth: 'secret-token-1', baseUrl: mirror.url });
  const seenUrls: string[] = [];
  octokit.hook.before('request', (options) => {
    seenUrls.push(String(options.url));
  });
  const all = await octokit.paginate(octokit.rest.issues.listForRepo, { owner: 'octokit-fixture-org', repo: 'hello-world', per_page: 20 });
  t.is(all.length, 95);
  t.deepEqual(
    all.map((i) => i.number),
    items.map((i) => i.number),
  );
  t.is(github.callsTo('/repos/octokit-fixture-org/hello-world/issues').length, 5);
  t.true(seenUrls.slice(1).every((u) => u.startsWith(mirror.url)), 'next pages went through the mirror');

  // Second pass: every page revalidated, no quota.
  const before = github.quotaSpent('token secret-token-1');
  const again = await octokit.paginate(octokit.rest.issues.listForRepo, { owner: 'octokit-fixture-org', repo: 'hello-world', per_page: 20 });
  t.is(again.length, 95);
  t.is(github.quotaSpent('token secret-token-1'), before);
});

test('realistic fixtures: get-repository through the mirror', async (t) => {
  const paths = github.loadFixtures();
  t.true(paths.includes('/repos/octokit-fixture-org/hello-world'));
  const octokit = new Octokit({ auth: 'secret-token-2', baseUrl: mirror.url });
  const first = await octokit.rest.repos.get({ owner: 'octokit-fixture-org', repo: 'hello-world' });
  const second = await octokit.rest.repos.get({ owner: 'octokit-fixture-org', repo: 'hello-world' });
  t.is(first.headers['x-cache' as 'etag'], 'ONLINE_MISS');
  t.is(second.headers['x-cache' as 'etag'], 'ONLINE_HIT');
  t.deepEqual(second.data, first.data);
  t.true(second.data.url.startsWith(mirror.url), 'body URLs point at the mirror');
});
