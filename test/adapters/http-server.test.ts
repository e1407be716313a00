/**
 * The HTTP adapter alone (fastify inject, use cases faked): the mirror's own failures become the status
 * of their code and the one JSON error shape, for GET, HEAD, pass-through and the allowlist's relay;
 * each plugin refuses bad options at registration and lets go of what it opened on close; the access
 * log writes at the level pino has on.
 */
import test from 'ava';
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { buildHttpServer, type HttpAdapterDeps, type HttpAdapterOptions } from '../../src/adapters/http/fastify-server.adapter.js';
import { createLogger } from '../../src/app/logger.js';
import { ErrorCode } from '../../src/domain/errors.js';
import { EventName } from '../../src/domain/events/events.js';
import type { Outcome } from '../../src/domain/model.js';
import type { Resolution } from '../../src/domain/resolution.js';
import type { PassThroughResult } from '../../src/domain/use-cases/pass-through.js';
import { UserCheckFailed } from '../../src/domain/use-cases/admit-client.js';
import { RecordingBus, enc } from '../support/fakes.js';

const OPTIONS: HttpAdapterOptions = {
  upstreamUrl: 'https://api.github.com',
  publicUrl: '',
  trustProxy: false,
  bodyLimitBytes: 1024,
  bodyTimeoutMs: 5000,
  rewriteBodyUrls: true,
  requestTimeoutMs: 5000,
  headersTimeoutMs: 5000,
};

function build(overrides: Partial<HttpAdapterDeps> = {}, options: Partial<HttpAdapterOptions> = {}, logLevel = 'silent') {
  const lines: Array<Record<string, unknown>> = [];
  const bus = new RecordingBus();
  const deps: HttpAdapterDeps = {
    resolveResource: {
      execute: () => Promise.resolve({ outcome: 'ONLINE_MISS', status: 200, headers: { 'content-type': 'application/json' }, body: enc({ ok: true }), collapsed: false, fromCache: false, upstreamStatus: 200 }),
    },
    passThrough: { execute: () => Promise.resolve({ outcome: 'ONLINE_MISS', status: 201, headers: {}, body: Readable.from([enc('{}')]), upstreamStatus: 201 }) },
    events: bus,
    readiness: () => ({ ready: true }),
    metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
    logger: createLogger(logLevel, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
    ...overrides,
  };
  const app = buildHttpServer(deps, { ...OPTIONS, ...options });
  return { app, lines, bus };
}

const failures: Array<{ code: ErrorCode; outcome: Outcome; status: number; cacheStatus: string; message: string }> = [
  { code: ErrorCode.UPSTREAM_TIMEOUT, outcome: 'API_TIMEOUT_MISS', status: 504, cacheStatus: 'github-mirror; fwd=miss; detail=api-timeout', message: 'GitHub did not answer in time' },
  { code: ErrorCode.UPSTREAM_UNREACHABLE, outcome: 'API_CONNECTION_ERROR_MISS', status: 502, cacheStatus: 'github-mirror; fwd=miss; detail=api-connection-error', message: 'Could not reach GitHub' },
  { code: ErrorCode.UPSTREAM_OFFLINE, outcome: 'OFFLINE_MISS', status: 504, cacheStatus: 'github-mirror; fwd=miss; detail=upstream-offline', message: 'GitHub is unreachable; the mirror is answering offline' },
];

async function withApp(t: import('ava').ExecutionContext, app: FastifyInstance, run: () => Promise<void>): Promise<void> {
  t.teardown(() => app.close());
  await run();
}

for (const failure of failures) {
  test(`a resolution failing with ${failure.code}: ${failure.status}, the JSON error, X-Cache and Cache-Status`, async (t) => {
    const resolution: Resolution = { outcome: failure.outcome, error: { code: failure.code, message: failure.message }, collapsed: false, fromCache: false };
    const { app } = build({ resolveResource: { execute: () => Promise.resolve(resolution) } });
    await withApp(t, app, async () => {
      const answer = await app.inject({ method: 'GET', url: '/repos/o/r', headers: { 'accept-encoding': 'gzip' } });
      t.is(answer.statusCode, failure.status);
      t.is(answer.headers['content-type'], 'application/json; charset=utf-8');
      t.is(answer.headers['x-cache'], failure.outcome);
      t.is(answer.headers['cache-status'], failure.cacheStatus);
      t.is(answer.headers['content-encoding'], undefined);
      t.is(answer.body, JSON.stringify({ message: failure.message, code: failure.code }));
      t.is(answer.headers['content-length'], String(Buffer.byteLength(answer.body)));
      const head = await app.inject({ method: 'HEAD', url: '/repos/o/r' });
      t.is(head.statusCode, failure.status);
      t.is(head.headers['x-cache'], failure.outcome);
      t.is(head.body, '');
    });
  });

  test(`a pass-through failing with ${failure.code}: ${failure.status} and the same JSON error`, async (t) => {
    const result: PassThroughResult = { outcome: failure.outcome, error: { code: failure.code, message: failure.message } };
    const { app } = build({ passThrough: { execute: () => Promise.resolve(result) } });
    await withApp(t, app, async () => {
      const answer = await app.inject({ method: 'POST', url: '/repos/o/r/issues', payload: '{}', headers: { 'content-type': 'application/json' } });
      t.is(answer.statusCode, failure.status);
      t.is(answer.headers['content-type'], 'application/json; charset=utf-8');
      t.is(answer.headers['x-cache'], failure.outcome);
      t.is(answer.headers['cache-status'], failure.cacheStatus);
      t.deepEqual(JSON.parse(answer.body), { message: failure.message, code: failure.code });
    });
  });
}

test('a collapsed failure says so in Cache-Status', async (t) => {
  const resolution: Resolution = { outcome: 'API_TIMEOUT_MISS', error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' }, collapsed: true, fromCache: false };
  const { app } = build({ resolveResource: { execute: () => Promise.resolve(resolution) } });
  await withApp(t, app, async () => {
    const answer = await app.inject({ method: 'GET', url: '/repos/o/r' });
    t.is(answer.statusCode, 504);
    t.is(answer.headers['cache-status'], 'github-mirror; fwd=miss; detail=api-timeout; collapsed');
  });
});

test("the allowlist's /user check failing with the mirror's own failure: that failure's status and JSON are relayed", async (t) => {
  const answer: Resolution = { outcome: 'API_TIMEOUT_MISS', error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' }, collapsed: false, fromCache: false };
  const { app } = build({ admit: () => Promise.reject(new UserCheckFailed(answer)) });
  await withApp(t, app, async () => {
    const relayed = await app.inject({ method: 'GET', url: '/repos/o/r', headers: { authorization: 'token x' } });
    t.is(relayed.statusCode, 504);
    t.is(relayed.headers['content-type'], 'application/json; charset=utf-8');
    t.is(relayed.headers['x-cache'], 'API_TIMEOUT_MISS');
    t.is(relayed.headers['cache-status'], 'github-mirror; fwd=miss; detail=api-timeout');
    t.deepEqual(JSON.parse(relayed.body), { message: 'GitHub did not answer in time', code: 'UPSTREAM_TIMEOUT' });
  });
});

test('each plugin refuses bad options when the server gets ready', async (t) => {
  const badUpstream = build({}, { upstreamUrl: 'ftp://example.com' }).app;
  await t.throwsAsync(badUpstream.ready(), { message: /mirror-proxy-routes: options\.upstreamUrl/ });
  await badUpstream.close();
  const badPublic = build({}, { publicUrl: 'not a url' }).app;
  await t.throwsAsync(badPublic.ready(), { message: /mirror-proxy-routes: options\.publicUrl/ });
  await badPublic.close();
  const noReadiness = build({ readiness: undefined as unknown as HttpAdapterDeps['readiness'] }).app;
  await t.throwsAsync(noReadiness.ready(), { message: /mirror-reserved-routes: options\.readiness/ });
  await noReadiness.close();
  const noEvents = build({ events: undefined as unknown as HttpAdapterDeps['events'] }).app;
  await t.throwsAsync(noEvents.ready(), { message: /mirror-request-log: options\.events/ });
  await noEvents.close();
});

test('the CONNECT refusal is attached while the server runs and removed on close', async (t) => {
  const { app } = build();
  const before = app.server.listenerCount('connect');
  await app.ready();
  t.is(app.server.listenerCount('connect'), before + 1);
  await app.close();
  t.is(app.server.listenerCount('connect'), before);
});

/**
 * The access log of three answers — a probe of /healthz, a GET answered `okOutcome`, the same GET
 * failing upstream (504) — at `level`: the request lines written, and the http.request.completed events.
 */
async function accessLogOf(level: string, url: string, okOutcome: Outcome, options: Partial<HttpAdapterOptions> = {}) {
  const failing: Resolution = { outcome: 'API_TIMEOUT_MISS', error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time' }, collapsed: false, fromCache: false };
  let fail = false;
  const ok: Resolution = { outcome: okOutcome, status: 200, headers: {}, body: enc('{}'), collapsed: false, fromCache: okOutcome === 'ONLINE_HIT' };
  const resolveResource = { execute: () => Promise.resolve(fail ? failing : ok) };
  const { app, lines, bus } = build({ resolveResource }, options, level);
  await app.inject({ method: 'GET', url: '/healthz' });
  await app.inject({ method: 'GET', url });
  fail = true;
  await app.inject({ method: 'GET', url });
  await app.close();
  return { requests: lines.filter((line) => line['msg'] === 'request'), events: bus.named(EventName.httpCompleted).length };
}

test('log.requests off: only the lines of failed answers (5xx at warn), whatever the level; events as before', async (t) => {
  for (const level of ['debug', 'info'] as const) {
    const { requests, events } = await accessLogOf(level, '/repos/o/r', 'ONLINE_HIT', { logRequests: false });
    t.deepEqual(
      requests.map((line) => `${String(line['path'])} ${String(line['level'])} ${String(line['outcome'])}`),
      ['/repos/o/r 40 API_TIMEOUT_MISS'],
      level,
    );
    t.is(events, 3, 'one event per answer, logged or not');
  }
});

test('the access log: one line per answer at the level pino has on (reserved paths at debug, 5xx at warn)', async (t) => {
  for (const [level, expected] of [
    ['debug', ['/healthz 20', '/repos/o/r?token=[redacted] 30', '/repos/o/r?token=[redacted] 40']],
    ['info', ['/repos/o/r?token=[redacted] 30', '/repos/o/r?token=[redacted] 40']],
    ['warn', ['/repos/o/r?token=[redacted] 40']],
    ['silent', []],
  ] as const) {
    const { requests, events } = await accessLogOf(level, '/repos/o/r?token=abc', 'ONLINE_MISS');
    t.deepEqual(
      requests.map((line) => `${String(line['path'])} ${String(line['level'])}`),
      [...expected],
      level,
    );
    t.is(events, 3, 'one event per answer whatever the level');
  }
});
