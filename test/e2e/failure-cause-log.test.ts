/**
 * Issue 14, item 6: an answer the mirror makes because GitHub failed (502 "Could not reach GitHub",
 * or a cached body served instead) logs why on its request line (`cause`), and never sends it to
 * the client.
 */
import test from 'ava';
import { createServer, type AddressInfo } from 'node:net';
import { FakeGitHub } from '../support/fake-github.js';
import { fetchText, startMirror } from '../support/mirror-harness.js';
import { createLogger } from '../../src/app/logger.js';
import type { Mirror } from '../../src/app/mirror.js';

const lines: Array<Record<string, unknown>> = [];
const logger = createLogger('info', {
  write(line: string) {
    lines.push(JSON.parse(line) as Record<string, unknown>);
  },
});

let github: FakeGitHub;
let nowhere: Mirror;
let flaky: Mirror;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test.before(async () => {
  github = await FakeGitHub.start();
  nowhere = await startMirror(`http://127.0.0.1:${await closedPort()}`, { MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }, { logger });
  flaky = await startMirror(github.url, { MIRROR_UPSTREAM_BREAKER_ENABLED: 'false' }, { logger });
});

test.after.always(async () => {
  await nowhere?.stop();
  await flaky?.stop();
  await github?.close();
});

function requestLine(path: string): Record<string, unknown> | undefined {
  return lines.filter((l) => l.msg === 'request' && l.path === path).at(-1);
}

test.serial('a 502 "Could not reach GitHub" logs its cause; the client gets only the message and code', async (t) => {
  const answer = await fetchText(`${nowhere.url}/repos/o/unreachable`);
  t.is(answer.status, 502);
  t.deepEqual(JSON.parse(answer.text), { message: 'Could not reach GitHub', code: 'UPSTREAM_UNREACHABLE' });
  const line = requestLine('/repos/o/unreachable');
  t.like(line, { status: 502, outcome: 'API_CONNECTION_ERROR_MISS' });
  t.regex(String(line?.cause), /ECONNREFUSED/);

  const write = await fetchText(`${nowhere.url}/repos/o/unreachable/issues`, { method: 'POST', body: '{}' });
  t.is(write.status, 502);
  t.regex(String(requestLine('/repos/o/unreachable/issues')?.cause), /ECONNREFUSED/);
});

test.serial('a cached body served because GitHub broke off logs the cause too', async (t) => {
  github.setResource('/repos/o/flaky', { body: { ok: true } });
  t.is((await fetchText(`${flaky.url}/repos/o/flaky`, { headers: { authorization: 'token c' } })).headers.get('x-cache'), 'ONLINE_MISS');
  github.injectFault('/repos/o/flaky', { kind: 'reset-mid-body' });
  const stale = await fetchText(`${flaky.url}/repos/o/flaky`, { headers: { authorization: 'token c' } });
  github.clearFaults();
  t.is(stale.headers.get('x-cache'), 'API_CONNECTION_ERROR_HIT');
  const line = requestLine('/repos/o/flaky');
  t.like(line, { status: 200, outcome: 'API_CONNECTION_ERROR_HIT' });
  t.regex(String(line?.cause), /^UPSTREAM_UNREACHABLE: Could not reach GitHub ← UND_ERR_SOCKET: /);
});
