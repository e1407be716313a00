/**
 * Real clients against the mirror in front of the fake GitHub (serial: the tests share the fake's
 * call log and faults):
 * - @octokit/rest with @octokit/plugin-throttling and @octokit/plugin-retry: get, paginate, a write,
 *   a 5xx retried, the primary and the secondary rate limit seen (and handled) by the throttling plugin;
 * - curl: conditional requests with If-None-Match, HEAD, gzip, and HTTPS with a CA file;
 * - the GitHub CLI (`gh api`, Debian's gh) as a GitHub Enterprise client: GH_HOST=127.0.0.1:PORT,
 *   GH_ENTERPRISE_TOKEN, HTTPS with a self-signed certificate made here with openssl and trusted
 *   through SSL_CERT_FILE; gh then talks to https://127.0.0.1:PORT/api/v3/.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const execFileAsync = promisify(execFile);

const OWNER = 'octokit-fixture-org';
const REPO = 'hello-world';

let github: FakeGitHub;
let mirror: Mirror;
let tlsMirror: Mirror;
let dir: string;
let certFile: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ghm-clients-'));
  certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  github = await FakeGitHub.start();
  github.loadFixtures();
  mirror = await startMirror(github.url);
  tlsMirror = await startMirror(github.url, { MIRROR_TLS_CERT: certFile, MIRROR_TLS_KEY: keyFile });
});

test.after.always(async () => {
  await tlsMirror?.stop();
  await mirror?.stop();
  await github?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Octokit with the throttling and retry plugins
// ---------------------------------------------------------------------------------------------

const ThrottledOctokit = Octokit.plugin(throttling, retry);

interface LimitCall {
  retryAfter: number;
  url: string;
  retryCount: number;
}

function makeOctokit(token: string, onLimit: { primary?: (call: LimitCall) => boolean; secondary?: (call: LimitCall) => boolean } = {}) {
  const primary: LimitCall[] = [];
  const secondary: LimitCall[] = [];
  const octokit = new ThrottledOctokit({
    auth: token,
    baseUrl: mirror.url,
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    throttle: {
      onRateLimit: (retryAfter, options, _octokit, retryCount) => {
        const call = { retryAfter, url: String(options.url), retryCount };
        primary.push(call);
        return onLimit.primary?.(call) ?? false;
      },
      onSecondaryRateLimit: (retryAfter, options, _octokit, retryCount) => {
        const call = { retryAfter, url: String(options.url), retryCount };
        secondary.push(call);
        return onLimit.secondary?.(call) ?? false;
      },
    },
    // 429 is the throttling plugin's business; the retry plugin takes 5xx, quickly.
    retry: { retryAfterBaseValue: 20, doNotRetry: [400, 401, 403, 404, 410, 422, 429, 451] },
  });
  return { octokit, primary, secondary };
}

test.serial('octokit: get twice — fetched, then revalidated for free, with fresh rate-limit headers', async (t) => {
  const { octokit } = makeOctokit('octokit-get');
  const first = await octokit.rest.repos.get({ owner: OWNER, repo: REPO });
  const spent = github.quotaSpent('token octokit-get');
  const second = await octokit.rest.repos.get({ owner: OWNER, repo: REPO });
  t.is(first.headers['x-cache' as 'etag'], 'ONLINE_MISS');
  t.is(second.headers['x-cache' as 'etag'], 'ONLINE_HIT');
  t.deepEqual(second.data, first.data);
  t.is(github.quotaSpent('token octokit-get'), spent, 'the 304 cost no quota');
  t.truthy(second.headers['x-ratelimit-remaining'], 'rate-limit headers reach the client on a hit');
  t.true(second.data.url.startsWith(mirror.url), 'body URLs point at the mirror');
});

test.serial('octokit: paginate walks every page through the mirror; a second walk costs nothing', async (t) => {
  const path = `/repos/${OWNER}/${REPO}/issues`;
  const items = Array.from({ length: 95 }, (_, i) => ({ id: 1000 + i, number: i + 1, title: `issue ${i + 1}`, state: 'open' }));
  github.setList(path, items);
  const { octokit } = makeOctokit('octokit-paginate');
  const urls: string[] = [];
  octokit.hook.before('request', (options) => {
    urls.push(String(options.url));
  });
  const all = await octokit.paginate(octokit.rest.issues.listForRepo, { owner: OWNER, repo: REPO, per_page: 20 });
  t.deepEqual(
    all.map((issue) => issue.number),
    items.map((issue) => issue.number),
  );
  t.is(urls.length, 5);
  t.true(urls.slice(1).every((url) => url.startsWith(`${mirror.url}/`)), 'next links were rewritten to the mirror');
  const spent = github.quotaSpent('token octokit-paginate');
  const again = await octokit.paginate(octokit.rest.issues.listForRepo, { owner: OWNER, repo: REPO, per_page: 20 });
  t.is(again.length, 95);
  t.is(github.quotaSpent('token octokit-paginate'), spent);
});

test.serial('octokit: a write goes through unchanged and is never cached', async (t) => {
  const { octokit } = makeOctokit('octokit-write');
  const path = `/repos/${OWNER}/${REPO}/issues`;
  const before = github.callsTo(path).filter((c) => c.method === 'POST').length;
  const created = await octokit.rest.issues.create({ owner: OWNER, repo: REPO, title: 'Found a bug', body: 'ünïcödé ✓', labels: ['bug'] });
  t.is(created.status, 201);
  t.is(created.headers['x-cache' as 'etag'], 'ONLINE_MISS');
  const echo = created.data as unknown as { method: string; body: string; headers: Record<string, string> };
  t.is(echo.method, 'POST');
  t.deepEqual(JSON.parse(echo.body), { title: 'Found a bug', body: 'ünïcödé ✓', labels: ['bug'] });
  t.is(echo.headers.authorization, 'token octokit-write');
  t.regex(echo.headers['content-type'] ?? '', /application\/json/);
  await octokit.rest.issues.create({ owner: OWNER, repo: REPO, title: 'Again' });
  t.is(github.callsTo(path).filter((c) => c.method === 'POST').length, before + 2, 'both writes reached GitHub');
});

test.serial('octokit retry plugin: a 502 from GitHub (nothing cached) is passed on and retried', async (t) => {
  const path = `/repos/${OWNER}/retry-me`;
  github.setResource(path, { body: { id: 7, name: 'retry-me' } });
  github.injectFault(path, { kind: 'status', status: 502 }, 1);
  const { octokit } = makeOctokit('octokit-retry');
  const response = await octokit.rest.repos.get({ owner: OWNER, repo: 'retry-me' });
  t.is(response.status, 200);
  t.is(response.data.name, 'retry-me');
  t.deepEqual(
    github.callsTo(path).map((c) => c.status),
    [502, 200],
  );
});

test.serial('octokit throttling plugin: a primary rate limit passed through (RATE_LIMITED_MISS) reaches onRateLimit', async (t) => {
  const path = `/repos/${OWNER}/limited`;
  github.setResource(path, { body: { id: 8, name: 'limited' } });
  github.injectFault(path, { kind: 'rate-limit' }, 1);
  const { octokit, primary, secondary } = makeOctokit('octokit-primary', { primary: () => false });
  const error = await t.throwsAsync(octokit.rest.repos.get({ owner: OWNER, repo: 'limited' }));
  const status = (error as { status?: number } | undefined)?.status;
  const headers = (error as { response?: { headers: Record<string, string> } } | undefined)?.response?.headers;
  t.is(status, 403);
  t.is(headers?.['x-cache'], 'RATE_LIMITED_MISS');
  t.is(headers?.['x-ratelimit-remaining'], '0');
  t.is(primary.length, 1, 'onRateLimit was called');
  t.true((primary[0]?.retryAfter ?? 0) > 0, 'with the wait until x-ratelimit-reset');
  t.is(secondary.length, 0);
});

test.serial('octokit throttling plugin: a rate limit on a cached resource is absorbed by the mirror (RATE_LIMITED_HIT)', async (t) => {
  const { octokit, primary } = makeOctokit('octokit-absorbed');
  const first = await octokit.rest.repos.get({ owner: OWNER, repo: REPO });
  github.injectFault(`/repos/${OWNER}/${REPO}`, { kind: 'rate-limit' }, 1);
  const second = await octokit.rest.repos.get({ owner: OWNER, repo: REPO });
  t.is(second.status, 200);
  t.is(second.headers['x-cache' as 'etag'], 'RATE_LIMITED_HIT');
  t.deepEqual(second.data, first.data);
  t.is(primary.length, 0, 'the client never saw the limit');
});

test.serial('octokit throttling plugin: a secondary rate limit (429, Retry-After) is waited out and retried; the retry does not hit GitHub early', async (t) => {
  const path = `/repos/${OWNER}/secondary`;
  github.setResource(path, { body: { id: 9, name: 'secondary' } });
  github.injectFault(path, { kind: 'secondary-rate-limit', retryAfterSeconds: 1 }, 1);
  const { octokit, secondary, primary } = makeOctokit('octokit-secondary', { secondary: (call) => call.retryCount < 3 });
  const response = await octokit.rest.repos.get({ owner: OWNER, repo: 'secondary' });
  t.is(response.status, 200);
  t.is(response.data.name, 'secondary');
  t.true(secondary.length >= 1, 'onSecondaryRateLimit was called');
  t.is(secondary[0]?.retryAfter, 1, 'with GitHub’s Retry-After');
  t.is(primary.length, 0);
  t.deepEqual(
    github.callsTo(path).map((c) => c.status),
    [429, 200],
    'GitHub saw the first request and the retry after the wait, nothing in between',
  );
});

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

interface CurlAnswer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

async function curl(args: string[]): Promise<CurlAnswer> {
  const out = mkdtempSync(join(dir, 'curl-'));
  const headerFile = join(out, 'headers');
  const bodyFile = join(out, 'body');
  await execFileAsync('curl', ['-sS', '--noproxy', '*', '--max-time', '20', '-D', headerFile, '-o', bodyFile, ...args]);
  const raw = readFileSync(headerFile, 'utf8').trim().split(/\r?\n/);
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(raw[0] ?? '')?.[1]);
  const headers = new Map<string, string>();
  for (const line of raw.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body: Buffer;
  try {
    body = readFileSync(bodyFile);
  } catch {
    body = Buffer.alloc(0);
  }
  return { status, headers, body };
}

test.serial('curl: If-None-Match with the ETag gets a bodiless 304; another ETag gets the body', async (t) => {
  const url = `${mirror.url}/repos/${OWNER}/${REPO}`;
  const auth = ['-H', 'Authorization: token curl-user'];
  const first = await curl([...auth, url]);
  t.is(first.status, 200);
  const etag = first.headers.get('etag');
  t.truthy(etag);
  const conditional = await curl([...auth, '-H', `If-None-Match: ${etag ?? ''}`, url]);
  t.is(conditional.status, 304);
  t.is(conditional.body.length, 0, 'no body');
  t.is(conditional.headers.get('etag'), etag);
  t.is(conditional.headers.get('x-cache'), 'ONLINE_HIT');
  t.truthy(conditional.headers.get('cache-status'));
  const other = await curl([...auth, '-H', 'If-None-Match: "not-the-etag"', url]);
  t.is(other.status, 200);
  t.deepEqual(JSON.parse(other.body.toString()), JSON.parse(first.body.toString()));
});

test.serial('curl: HEAD, gzip (--compressed) and the query string kept byte for byte', async (t) => {
  const auth = ['-H', 'Authorization: token curl-user-2'];
  const head = await curl([...auth, '-I', `${mirror.url}/repos/${OWNER}/${REPO}`]);
  t.is(head.status, 200);
  t.truthy(head.headers.get('x-cache'));
  t.is(head.headers.get('etag'), (await curl([...auth, `${mirror.url}/repos/${OWNER}/${REPO}`])).headers.get('etag'), 'HEAD answers like GET');

  const gzipped = await curl([...auth, '--compressed', `${mirror.url}/repos/${OWNER}/${REPO}`]);
  t.is(gzipped.status, 200);
  t.is(gzipped.headers.get('content-encoding'), 'gzip');
  t.is((JSON.parse(gzipped.body.toString()) as { name: string }).name, REPO, 'curl inflated the body');

  const search = '/search/issues';
  github.setResource(search, { body: { total_count: 0, items: [] } });
  const query = 'q=repo%3Aoctokit-fixture-org%2Fhello-world+is%3Aopen&sort=created&q=label:bug';
  const answer = await curl([...auth, '-g', `${mirror.url}${search}?${query}`]);
  t.is(answer.status, 200);
  t.is(github.callsTo(search).at(-1)?.target, `${search}?${query}`, 'same bytes, same order, repeated key kept, nothing added');
});

test.serial('curl over HTTPS (self-signed certificate trusted with --cacert) under /api/v3', async (t) => {
  t.true(tlsMirror.url.startsWith('https://'));
  const answer = await curl(['--cacert', certFile, '-H', 'Authorization: token curl-tls', `${tlsMirror.url}/api/v3/repos/${OWNER}/${REPO}`]);
  t.is(answer.status, 200);
  const body = JSON.parse(answer.body.toString()) as { url: string };
  t.is(body.url, `${tlsMirror.url}/api/v3/repos/${OWNER}/${REPO}`, 'URLs keep the /api/v3 prefix and the https scheme');
});

// ---------------------------------------------------------------------------------------------
// gh (GitHub CLI) as a GitHub Enterprise client
// ---------------------------------------------------------------------------------------------

async function gh(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const home = join(dir, 'gh-home');
  const { host, port } = new URL(tlsMirror.url);
  try {
    return await execFileAsync('gh', args, {
      timeout: 30_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        GH_CONFIG_DIR: join(home, 'config'),
        // gh treats any host but github.com as GitHub Enterprise: https://HOST/api/v3/, token from GH_ENTERPRISE_TOKEN.
        GH_HOST: `${host.replace(/:\d+$/, '')}:${port}`,
        GH_ENTERPRISE_TOKEN: 'gh-cli-token',
        // Go's TLS stack reads extra roots from SSL_CERT_FILE: the self-signed certificate is the only one.
        SSL_CERT_FILE: certFile,
        GH_NO_UPDATE_NOTIFIER: '1',
        GH_PROMPT_DISABLED: '1',
        NO_COLOR: '1',
        NO_PROXY: '127.0.0.1,localhost',
        no_proxy: '127.0.0.1,localhost',
      },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('gh is not installed: apt-get install gh (.ci/run does)');
    throw error;
  }
}

function splitInclude(output: string): { status: number; headers: Map<string, string>; body: string } {
  const [head = '', ...rest] = output.split(/\r?\n\r?\n/);
  const lines = head.split(/\r?\n/);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1]), headers, body: rest.join('\n\n') };
}

test.serial('gh api through /api/v3 over HTTPS: get twice (miss, then a free revalidation)', async (t) => {
  const path = `/repos/${OWNER}/${REPO}`;
  const before = github.callsTo(path).length;
  const first = splitInclude((await gh(['api', '--include', `repos/${OWNER}/${REPO}`])).stdout);
  const second = splitInclude((await gh(['api', '--include', `repos/${OWNER}/${REPO}`])).stdout);
  t.is(first.status, 200);
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  t.is(second.headers.get('x-cache'), 'ONLINE_HIT');
  const body = JSON.parse(second.body) as { url: string; name: string };
  t.is(body.name, REPO);
  t.is(body.url, `${tlsMirror.url}/api/v3${path}`, 'body URLs under the Enterprise base URL');
  const calls = github.callsTo(path).slice(before);
  t.is(calls.length, 2, 'GitHub saw /repos/... without the /api/v3 prefix');
  t.is(calls[0]?.credential, 'token gh-cli-token');
  t.truthy(calls[1]?.headers['if-none-match'], 'the second one was conditional');
});

test.serial('gh api --paginate follows the rewritten Link headers under /api/v3', async (t) => {
  const path = `/repos/${OWNER}/gh-pages-walk/issues`;
  const items = Array.from({ length: 45 }, (_, i) => ({ id: 5000 + i, number: i + 1, title: `gh ${i + 1}` }));
  github.setList(path, items);
  const { stdout } = await gh(['api', '--paginate', '--jq', '.[].number', `repos/${OWNER}/gh-pages-walk/issues?per_page=20`]);
  t.deepEqual(
    stdout.trim().split('\n').map(Number),
    items.map((i) => i.number),
  );
  t.is(github.callsTo(path).length, 3);
  const withLinks = splitInclude((await gh(['api', '--include', `repos/${OWNER}/gh-pages-walk/issues?per_page=20`])).stdout);
  t.true((withLinks.headers.get('link') ?? '').includes(`<${tlsMirror.url}/api/v3${path}?per_page=20&page=2>; rel="next"`));
});

test.serial('gh api -X POST: a write through the mirror', async (t) => {
  const path = `/repos/${OWNER}/${REPO}/issues`;
  const { stdout } = await gh(['api', '-X', 'POST', `repos/${OWNER}/${REPO}/issues`, '-f', 'title=from gh', '-f', 'body=via the mirror']);
  const echo = JSON.parse(stdout) as { method: string; path: string; body: string };
  t.is(echo.method, 'POST');
  t.is(echo.path, path);
  t.deepEqual(JSON.parse(echo.body), { title: 'from gh', body: 'via the mirror' });
  t.is(github.callsTo(path).filter((c) => c.method === 'POST').at(-1)?.credential, 'token gh-cli-token');
});

test.serial('gh refuses the mirror when the certificate is not trusted (the TLS check is real)', async (t) => {
  writeFileSync(join(dir, 'empty.pem'), '');
  const error = await t.throwsAsync(
    execFileAsync('gh', ['api', `repos/${OWNER}/${REPO}`], {
      timeout: 30_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(dir, 'gh-home'),
        GH_CONFIG_DIR: join(dir, 'gh-home', 'config'),
        GH_HOST: new URL(tlsMirror.url).host,
        GH_ENTERPRISE_TOKEN: 'gh-cli-token',
        SSL_CERT_FILE: join(dir, 'empty.pem'),
        SSL_CERT_DIR: join(dir, 'no-such-dir'),
        GH_NO_UPDATE_NOTIFIER: '1',
        NO_PROXY: '127.0.0.1,localhost',
      },
    }),
  );
  t.regex(String((error as { stderr?: string } | undefined)?.stderr ?? error?.message), /certificate|x509|tls/i);
});
