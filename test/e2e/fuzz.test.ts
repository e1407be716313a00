/**
 * Property-based fuzzing of the HTTP edge (fast-check): thousands of random request targets (encoded
 * traversal, encoded separators, absolute and authority forms, raw and encoded unicode, control bytes),
 * header sets (Host and X-Forwarded-* pointing elsewhere, CRLF attempts, oversize values, Expect,
 * Upgrade, Transfer-Encoding) and methods, sent over raw sockets and over undici to a mirror in front
 * of the fake GitHub, with a second HTTP server standing for "another host". Properties:
 *  - every request gets an HTTP answer, and the mirror process keeps serving;
 *  - no 5xx made by the mirror itself (a 5xx passes only as the upstream's own: X-Cache API_ERROR_MISS
 *    and the fake recorded that 5xx — the fake here never fails, so in practice: no 5xx at all);
 *  - errors the mirror makes itself are JSON {message, code};
 *  - nothing reaches the other host; every call the fake GitHub receives has a target that starts with
 *    a single '/', has no dot segment (raw or percent-encoded), and the fake's own Host.
 */
import test from 'ava';
import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 500);
const BATCH = 8;

let github: FakeGitHub;
let mirror: Mirror;
let elsewhere: Server;
let elsewhereHits = 0;
let elsewhereHost: string;
let pool: Pool;

test.before(async () => {
  github = await FakeGitHub.start({ quota: 1e9, anonymousQuota: 1e9 });
  github.setResource('/repos/o/r', { body: { name: 'r' } });
  github.setResource('/repos/o/r/issues/1', { body: { number: 1 } });
  github.setList('/repos/o/r/issues', Array.from({ length: 45 }, (_, i) => ({ number: i + 1 })));
  github.setResource('/user', { body: { login: 'someone' } });
  elsewhere = createServer((_req, res) => {
    elsewhereHits++;
    res.end('the other host');
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  elsewhereHost = `127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  mirror = await startMirror(github.url, {
    MIRROR_BODY_LIMIT_BYTES: '65536',
    MIRROR_REQUEST_TIMEOUT_MS: '3000',
    MIRROR_HEADERS_TIMEOUT_MS: '3000',
  });
  pool = new Pool(mirror.url, { connections: BATCH, pipelining: 1, keepAliveTimeout: 10_000 });
});

test.after.always(async () => {
  await pool?.close();
  await mirror?.stop();
  await github?.close();
  await new Promise((resolve) => elsewhere?.close(resolve));
});

// ---- generators ----------------------------------------------------------------------------------

const BENIGN_SEGMENTS = ['repos', 'o', 'r', 'issues', '1', '2', 'user', 'users', 'orgs', 'pulls', 'contents', 'README.md', 'a-b', 'x_y', 'v1.2.3', 'comments'];

const HOSTILE_SEGMENTS = [
  'repos', 'o', 'r', 'issues', '1', 'user', 'api', 'v3', '', '.', '..', '%2e', '%2e%2e', '%2E%2e', '.%2e', '%2e.', '%2f', '%2F',
  '..%2f', '%2f..', '%5c', '%5C..', '%00', '%0d%0a', '%zz', '%', '%e', '%C3%A9', '%E2%80%AE', '%FF', '~user', ';a=b', '@', ':', 'a:b@c',
  'é', '日本', '\u202e', '😀', '\u0085', 'a b', 'x\ty', '"', '<', '{', '|', '^', '`', '\\', '..\\..', '*',
];

const segmentArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...BENIGN_SEGMENTS) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
  // Unicode, raw (refused by the HTTP parser) or percent-encoded (a valid path GitHub may 404).
  { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 12, unit: 'grapheme' }), fc.boolean()).map(([text, encode]) => (encode ? encodeURIComponent(text) : text)) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_.~%-]{1,12}$/) },
);

const queryArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 3, arbitrary: fc.constantFrom('?per_page=2&page=2', '?q=a%20b', '?x=..%2f..%2f', '?url=http://evil.example/', '?a=é', '?', '??', '?#') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20, unit: 'grapheme' }).map((q) => `?${q}`) },
);

const structuredPathArb = fc
  .tuple(fc.boolean(), fc.array(segmentArb, { minLength: 1, maxLength: 5 }), queryArb, fc.constantFrom('', '', '', '', '', '', '#frag', '/'))
  .map(([enterprise, segments, query, tail]) => `${enterprise ? '/api/v3' : ''}/${segments.join('/')}${tail}${query}`);

const hostileTargetArb = fc.oneof(
  fc.constantFrom(
    () => `http://${elsewhereHost}/x`,
    () => `https://${elsewhereHost}/`,
    () => `//${elsewhereHost}/x`,
    () => `///${elsewhereHost}/x`,
    () => elsewhereHost,
    () => `http://evil.example/repos/o/r`,
    () => `HTTP://${elsewhereHost}`,
    () => `${github.url}/repos/o/r`,
    () => '*',
    () => '',
    () => `/%2f%2f${elsewhereHost}/x`,
    () => `/\\\\${elsewhereHost}/x`,
    () => `/@${elsewhereHost}/x`,
    () => `/..;/x`,
    () => `/repos/o/r?redirect=http://${elsewhereHost}/`,
  ).map((make) => make()),
  fc.string({ maxLength: 40, unit: 'binary' }),
);

const targetArb = fc.oneof({ weight: 6, arbitrary: structuredPathArb }, { weight: 1, arbitrary: hostileTargetArb });

const methodArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') },
  { weight: 2, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PROPFIND', 'FOO', 'get', 'M-SEARCH', 'PURGE', 'QUERY') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,12}$/) },
);

type HeaderMaker = () => [string, string];
const HEADER_MAKERS: HeaderMaker[] = [
  () => ['Host', elsewhereHost],
  () => ['Host', 'evil.example'],
  () => ['Host', ''],
  () => ['X-Forwarded-Host', elsewhereHost],
  () => ['X-Forwarded-Proto', 'gopher'],
  () => ['Forwarded', `for=1.2.3.4;host=${elsewhereHost};proto=http`],
  () => ['X-Original-URL', `http://${elsewhereHost}/x`],
  () => ['X-Rewrite-URL', '/../../etc/passwd'],
  () => ['X-HTTP-Method-Override', 'DELETE'],
  () => ['Authorization', 'token fuzz-a'],
  () => ['Authorization', 'Bearer fuzz-b'],
  () => ['Authorization', ''],
  () => ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
  () => ['Accept', 'application/vnd.github+json'],
  () => ['Accept', 'application/vnd.github.raw'],
  () => ['Accept-Encoding', 'gzip'],
  () => ['Accept-Encoding', 'br;q=1, gzip;q=0, *;q=0'],
  () => ['If-None-Match', '*'],
  () => ['If-None-Match', 'W/"x", "y"'],
  () => ['If-Modified-Since', 'not a date'],
  () => ['Range', 'bytes=0-1'],
  () => ['Expect', '100-continue'],
  () => ['Upgrade', 'websocket'],
  () => ['Connection', 'Upgrade, Authorization'],
  () => ['Connection', 'keep-alive, X-Foo'],
  () => ['TE', 'trailers'],
  () => ['Max-Forwards', '0'],
  () => ['X-GitHub-Api-Version', '2022-11-28'],
  () => ['X-GitHub-Api-Version', '9999-99-99'],
  () => ['Content-Type', 'application/json'],
  () => ['Content-Type', 'multipart/form-data; boundary=x'],
  () => ['Content-Encoding', 'gzip'],
  () => ['Cookie', 'a=b'],
  () => ['X-Long', 'v'.repeat(4000)],
];

const headerArb: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...HEADER_MAKERS).map((make) => make()) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/),
      fc.oneof(
        fc.string({ maxLength: 30, unit: 'grapheme' }),
        fc.string({ maxLength: 30, unit: 'binary' }),
        fc.constantFrom('a\r\nHost: evil.example', 'a\r\n\r\nGET http://evil.example/ HTTP/1.1', 'a\nb', 'a\rb', '\u0000', ' spaced '),
      ),
    ),
  },
);

interface Case {
  transport: 'raw' | 'undici';
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: string | undefined;
  chunked: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  transport: fc.constantFrom<'raw' | 'undici'>('raw', 'raw', 'undici'),
  method: methodArb,
  target: targetArb,
  headers: fc.array(headerArb, { maxLength: 4 }),
  body: fc.option(fc.string({ maxLength: 200, unit: 'grapheme' }), { nil: undefined }),
  chunked: fc.boolean(),
});

// ---- transports ----------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Sends raw bytes and reads back exactly one final answer (1xx skipped); undefined when the connection closed without one. */
function sendRaw(payload: Buffer, head: boolean): Promise<Answer | undefined> {
  const { hostname, port } = new URL(mirror.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let buffer = Buffer.alloc(0);
    let done = false;
    const finish = (answer: Answer | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(undefined), 10_000);
    const tryParse = (ended: boolean) => {
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return ended ? finish(undefined) : undefined;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const rest = buffer.subarray(end + 4);
        if (status >= 100 && status < 200) {
          buffer = rest;
          continue;
        }
        if (head || status === 204 || status === 304) return finish({ status, headers, body: Buffer.alloc(0) });
        if (headers['content-length'] !== undefined) {
          const length = Number(headers['content-length']);
          if (rest.length >= length) return finish({ status, headers, body: rest.subarray(0, length) });
          return ended ? finish({ status, headers, body: rest }) : undefined;
        }
        if (headers['transfer-encoding']?.includes('chunked')) {
          const decoded = dechunk(rest);
          if (decoded !== undefined) return finish({ status, headers, body: decoded });
          return ended ? finish({ status, headers, body: rest }) : undefined;
        }
        return ended ? finish({ status, headers, body: rest }) : undefined;
      }
    };
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      tryParse(false);
    });
    socket.on('error', () => tryParse(true));
    socket.on('close', () => tryParse(true));
  });
}

/** A complete chunked body, or undefined while incomplete. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}

function rawPayload(c: Case): Buffer {
  const lines = [`${c.method} ${c.target} HTTP/1.1`];
  if (!c.headers.some(([name]) => name.toLowerCase() === 'host')) lines.push(`Host: ${new URL(mirror.url).host}`);
  for (const [name, value] of c.headers) lines.push(`${name}: ${value}`);
  const body = c.body === undefined ? undefined : Buffer.from(c.body, 'utf8');
  if (body !== undefined) {
    if (c.chunked) lines.push('Transfer-Encoding: chunked');
    else lines.push(`Content-Length: ${body.length}`);
  }
  lines.push('Connection: close');
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8');
  if (body === undefined) return head;
  const encoded = c.chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : body;
  return Buffer.concat([head, encoded]);
}

/**
 * undici validates what it sends and refuses some requests itself — and after refusing a header value
 * its pool stops answering (an undici quirk, seen against a plain node:http server too). Requests it
 * would refuse go over a raw socket instead.
 */
function undiciCanSend(c: Case): boolean {
  if (!/^\/[\x21-\x7e]*$/.test(c.target)) return false;
  if (!/^[A-Za-z!#$%&'*+.^_`|~-]+$/.test(c.method) || c.method.toUpperCase() === 'CONNECT') return false;
  return c.headers.every(([name, value]) => /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name) && /^[\t\x20-\x7e]*$/.test(value));
}

const UNDICI_SKIPPED = new Set(['host', 'connection', 'upgrade', 'expect', 'transfer-encoding', 'content-length', 'keep-alive', 'te']);

/** undici refuses to send some requests itself (invalid header bytes, CONNECT, ...): 'not-sent'. */
async function sendUndici(c: Case): Promise<Answer | 'not-sent' | undefined> {
  const headers: Record<string, string> = {};
  for (const [name, value] of c.headers) if (!UNDICI_SKIPPED.has(name.toLowerCase())) headers[name] = value;
  let response;
  try {
    response = await pool.request({
      path: c.target,
      method: c.method,
      headers,
      ...(c.body !== undefined && c.method !== 'GET' && c.method !== 'HEAD' ? { body: c.body } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || error instanceof TypeError) return 'not-sent';
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  try {
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: out, body };
  } catch {
    return undefined;
  }
}

// ---- the property --------------------------------------------------------------------------------

function hasDotSegment(path: string): boolean {
  return path.split('/').some((segment) => {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // a malformed escape is not a dot segment
    }
    return decoded === '.' || decoded === '..';
  });
}

function describe(c: Case, answer: Answer | undefined | 'not-sent'): string {
  const summary = answer === undefined || answer === 'not-sent' ? String(answer) : `${answer.status} x-cache=${answer.headers['x-cache']} ${answer.body.toString('utf8').slice(0, 200)}`;
  return `${c.transport} ${JSON.stringify(c.method)} ${JSON.stringify(c.target)} ${JSON.stringify(c.headers).slice(0, 300)} → ${summary}`;
}

/** Problems with one answer; empty when it is acceptable. */
function problemsOf(c: Case, answer: Answer | undefined | 'not-sent'): string[] {
  if (answer === 'not-sent') return [];
  if (answer === undefined) return [`no answer: ${describe(c, answer)}`];
  const problems: string[] = [];
  const xCache = answer.headers['x-cache'];
  if (answer.status >= 500) {
    const upstreamOwn = xCache === 'API_ERROR_MISS' && github.calls.some((call) => call.status === answer.status);
    if (!upstreamOwn) problems.push(`mirror-made ${answer.status}: ${describe(c, answer)}`);
  }
  if (answer.status >= 400 && xCache === undefined && c.method.toUpperCase() !== 'HEAD' && answer.body.length > 0) {
    try {
      const parsed = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
      const keys = Object.keys(parsed).sort().join(',');
      if (typeof parsed.message !== 'string' || typeof parsed.code !== 'string' || keys !== 'code,message') {
        problems.push(`error not shaped {message, code}: ${describe(c, answer)}`);
      }
    } catch {
      problems.push(`non-JSON error: ${describe(c, answer)}`);
    }
  }
  return problems;
}

/** What is wrong with a call the fake GitHub received; empty when nothing. */
function upstreamProblems(target: string, host: string | string[] | undefined): string[] {
  const problems: string[] = [];
  if (!target.startsWith('/') || target.startsWith('//')) problems.push(`upstream target ${JSON.stringify(target)} is not a single-slash path`);
  if (hasDotSegment(target.split('?')[0] ?? '')) problems.push(`upstream target ${JSON.stringify(target)} has a dot segment`);
  if (host !== new URL(github.url).host) problems.push(`upstream call with Host ${JSON.stringify(host)}`);
  return problems;
}

test('fuzz: random targets, headers and methods never get a mirror-made 5xx nor reach another host', async (t) => {
  let cases = 0;
  let sent = 0;
  let firstProblems: string[] | undefined;
  let checkedCalls = 0;
  t.teardown(() => {
    if (firstProblems) t.log(`first failing batch:\n${firstProblems.join('\n')}`);
  });
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(caseArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
      const answers = await Promise.all(
        batch.map(async (c) => {
          cases++;
          const answer = c.transport === 'undici' && undiciCanSend(c) ? await sendUndici(c) : await sendRaw(rawPayload(c), c.method === 'HEAD');
          if (answer !== 'not-sent') sent++;
          if (answer !== undefined && answer !== 'not-sent') statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          return answer;
        }),
      );
      const problems = batch.flatMap((c, i) => problemsOf(c, answers[i]));
      for (const call of github.calls.slice(checkedCalls)) problems.push(...upstreamProblems(call.target, call.headers.host));
      checkedCalls = github.calls.length;
      if (problems.length > 0) {
        firstProblems ??= problems;
        throw new Error(problems.join('\n'));
      }
      if (elsewhereHits > 0) throw new Error(`${elsewhereHits} request(s) reached the other host`);
    }),
    { numRuns: RUNS },
  );

  const message = `fuzz: ${cases} cases run (${sent} sent, ${cases - sent} refused by the client library), statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, ${github.calls.length} reached the fake GitHub`;
  t.log(message);
  console.log(message);

  t.is(elsewhereHits, 0, 'nothing reached the other host');
  t.deepEqual(
    github.calls.flatMap((call) => upstreamProblems(call.target, call.headers.host)),
    [],
  );
  t.true(github.calls.length > 0, 'well-formed requests did reach the upstream');
  const health = await fetch(`${mirror.url}/healthz`);
  t.is(health.status, 200, 'the mirror still serves');
  t.true(cases >= RUNS * BATCH);
});

