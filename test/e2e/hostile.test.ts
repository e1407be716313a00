/**
 * Requests a client library would never send: each gets a 4xx JSON answer from the mirror, and
 * nothing reaches any host but the upstream.
 */
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { rawRequest, parseRaw } from '../support/raw-http.js';
import type { Mirror } from '../../src/app/mirror.js';

let github: FakeGitHub;
let mirror: Mirror;
let elsewhere: Server;
let elsewhereHits = 0;
let elsewhereUrl: string;

test.before(async () => {
  github = await FakeGitHub.start();
  github.setResource('/repos/o/r', { body: { ok: true } });
  elsewhere = createServer((_req, res) => {
    elsewhereHits++;
    res.end('should never be reached');
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  mirror = await startMirror(github.url, { MIRROR_BODY_LIMIT_BYTES: '1024' });
});

test.after.always(async () => {
  await mirror?.stop();
  await github?.close();
  await new Promise((resolve) => elsewhere?.close(resolve));
});

function assertJson4xx(t: import('ava').ExecutionContext, answer: string): void {
  const { status, body } = parseRaw(answer);
  t.true(status >= 400 && status < 500, `status ${status}: ${answer.slice(0, 200)}`);
  const parsed = JSON.parse(body) as { message?: string; code?: string };
  t.is(typeof parsed.message, 'string');
  t.is(typeof parsed.code, 'string');
}

const host = () => new URL(mirror.url).host;

test.serial('absolute-form targets are refused and go nowhere', async (t) => {
  github.resetCalls();
  for (const target of [`${elsewhereUrl}/x`, 'http://evil.example/x', `${github.url}/repos/o/r`]) {
    const answer = await rawRequest(mirror.url, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    assertJson4xx(t, answer);
  }
  const connect = await rawRequest(mirror.url, `CONNECT ${new URL(elsewhereUrl).host} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
  assertJson4xx(t, connect);
  t.is(parseRaw(connect).status, 405);
  t.is(github.calls.length, 0);
  t.is(elsewhereHits, 0);
});

test.serial('dot segments and encoded separators are refused', async (t) => {
  github.resetCalls();
  for (const target of ['/repos/../../x', '/repos/o/%2e%2e/x', '/repos/o/%2E%2e/%2e%2e/admin', '/repos/o%2f..%2fx', '/a/./b', '/x%00y', '/repos/%zz']) {
    const answer = await rawRequest(mirror.url, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    assertJson4xx(t, answer);
  }
  t.is(github.calls.length, 0);
});

test.serial('an oversize body is refused with 413 JSON, declared or chunked', async (t) => {
  github.resetCalls();
  const big = 'x'.repeat(4096);
  const declared = await rawRequest(
    mirror.url,
    `POST /repos/o/r/issues HTTP/1.1\r\nHost: ${host()}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n${big}`,
  );
  t.is(parseRaw(declared).status, 413);
  assertJson4xx(t, declared);
  const chunked = await rawRequest(
    mirror.url,
    `POST /repos/o/r/issues HTTP/1.1\r\nHost: ${host()}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`,
  );
  t.is(parseRaw(chunked).status, 413);
  t.true(github.calls.every((c) => c.body.length <= 1024), 'no oversize body reached upstream');
});

test.serial('CRLF in a header, oversize headers and unknown methods get 4xx JSON', async (t) => {
  const crlf = await rawRequest(mirror.url, `GET /repos/o/r HTTP/1.1\r\nHost: ${host()}\r\nX-Bad: a\rb\r\nConnection: close\r\n\r\n`);
  assertJson4xx(t, crlf);
  t.is(parseRaw(crlf).status, 400);
  t.like(JSON.parse(parseRaw(crlf).body), { code: 'BAD_REQUEST' });
  const huge = await rawRequest(mirror.url, `GET /repos/o/r HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(70_000)}\r\nConnection: close\r\n\r\n`);
  assertJson4xx(t, huge);
  t.is(parseRaw(huge).status, 431);
  t.like(JSON.parse(parseRaw(huge).body), { code: 'HEADERS_TOO_LARGE' });
  const unknown = await rawRequest(mirror.url, `FOO /repos/o/r HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
  assertJson4xx(t, unknown);
});

test.serial('a well-formed request still works after all that', async (t) => {
  const response = await fetch(`${mirror.url}/repos/o/r`);
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { ok: true });
});

test.serial('encoded traversal after the Enterprise prefix, and a malformed escape, get the same JSON shape', async (t) => {
  github.resetCalls();
  for (const target of ['/api/v3//evil.example/x', '/api/v3/%2e%2e/x', '/repos/o/%zz/x', '/repos/%E0%A4%A']) {
    const answer = await rawRequest(mirror.url, `GET ${target} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    const { status, body } = parseRaw(answer);
    t.is(status, 400, target);
    t.deepEqual(Object.keys(JSON.parse(body) as object).sort(), ['code', 'message'], target);
    t.false(body.includes('%zz'), 'the target is not echoed');
  }
  t.is(github.calls.length, 0);
});

test.serial('Expect: 100-continue is answered by the mirror, not forwarded', async (t) => {
  github.resetCalls();
  const answer = await rawRequest(
    mirror.url,
    `POST /repos/o/r/issues HTTP/1.1\r\nHost: ${host()}\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
  );
  t.regex(answer, /HTTP\/1\.1 201 /);
  t.is(github.calls.length, 1);
  t.is(github.calls[0]?.headers['expect'], undefined);
});

test.serial('slow clients: headers or a body dribbled too slowly get 408 JSON, and do not trip the upstream breaker', async (t) => {
  const slowMirror = await startMirror(github.url, {
    MIRROR_HEADERS_TIMEOUT_MS: '300',
    MIRROR_REQUEST_TIMEOUT_MS: '1200',
    // Shorter than the request timeout: the upstream deadline must measure GitHub's silence, not the client's pace.
    MIRROR_UPSTREAM_TIMEOUT_MS: '400',
    MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD: '2',
  });
  try {
    const slow = (mode: 'headers' | 'body') =>
      dribble(slowMirror.url, mode === 'headers' ? 'GET /repos/o/r HTTP/1.1\r\nHost: x\r\n' : 'POST /repos/o/r/issues HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', mode === 'headers' ? 'X-Slow: 1\r\n' : 'a');
    const answers = await Promise.all([slow('headers'), slow('body'), slow('body'), slow('body')]);
    for (const answer of answers) {
      const { status, body } = parseRaw(answer);
      t.is(status, 408, answer.slice(0, 120));
      t.like(JSON.parse(body), { code: 'REQUEST_TIMEOUT' });
    }
    const after = await fetch(`${slowMirror.url}/repos/o/r`, { headers: { authorization: 'token slow' } });
    t.is(after.headers.get('x-cache'), 'ONLINE_MISS', 'the breaker stayed closed');
  } finally {
    await slowMirror.stop();
  }
});

/** Sends `head`, then `drip` every 100 ms until the server answers and closes; returns the answer. */
function dribble(url: string, head: string, drip: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => socket.destroy(), 15_000);
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => socket.write(drip), 100);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(guard);
      resolve(Buffer.concat(chunks).toString());
    });
  });
}
