/**
 * The GET fast path (proxy-routes.plugin.ts, get-edge.ts): GET and HEAD over a socket are answered
 * before fastify's router, everything else by fastify. Both ways give the same answer and the same
 * access line (compared with inject(), which always goes through fastify's route); the fast path's
 * requests are listed in flight and share fastify's request ids.
 */
import test from 'ava';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { buildHttpServer, type HttpAdapterDeps, type HttpAdapterOptions } from '../../src/adapters/http/fastify-server.adapter.js';
import { createLogger } from '../../src/app/logger.js';
import { ErrorCode, MirrorError } from '../../src/domain/errors.js';
import { EventName } from '../../src/domain/events/events.js';
import type { Resolution } from '../../src/domain/resolution.js';
import type { ResolveRequest } from '../../src/domain/use-cases/resolve-resource.js';
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

type Resolve = (request: ResolveRequest) => Promise<Resolution>;

async function start(resolve: Resolve, overrides: Partial<HttpAdapterDeps> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const bus = new RecordingBus();
  const deps: HttpAdapterDeps = {
    resolveResource: { execute: resolve },
    passThrough: { execute: () => Promise.resolve({ outcome: 'ONLINE_MISS', status: 201, headers: {}, body: Readable.from([enc('{}')]), upstreamStatus: 201 }) },
    events: bus,
    readiness: () => ({ ready: true }),
    metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
    logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
    ...overrides,
  };
  const app = buildHttpServer(deps, OPTIONS);
  // counts the requests that went through fastify's lifecycle
  const throughFastify: string[] = [];
  app.addHook('onRequest', (request, _reply, done) => {
    throughFastify.push(`${request.method} ${request.url}`);
    done();
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  lines.splice(0); // fastify's "listening" line
  return { app, lines, bus, throughFastify, url: address };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function send(url: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    // the path as it is (a URL string would be normalised: %2e%2e resolved as ..)
    const req = httpRequest({ hostname, port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

/** The headers of an answer that say what it is (not node's own connection and date headers). */
function meaningful(headers: IncomingHttpHeaders | Record<string, string | string[] | number | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'date' || name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding') continue;
    out[name] = value;
  }
  return out;
}

/** An access line without what differs between any two answers (time, duration, id). */
function lineOf(line: Record<string, unknown> | undefined): Record<string, unknown> {
  const { time: _time, ms: _ms, reqId: _reqId, ...rest } = line ?? {};
  // an error's stack names the way it came
  if (typeof rest['err'] === 'object' && rest['err'] !== null) rest['err'] = { ...(rest['err']), stack: undefined };
  return rest;
}

const BODY = JSON.stringify({ url: 'https://api.github.com/repos/o/r', padding: 'x'.repeat(2000) });

const cases: Array<{ name: string; resolve: Resolve; admit?: HttpAdapterDeps['admit']; method?: string; headers?: Record<string, string> }> = [
  {
    name: 'a 200 with a Link, gzip asked',
    headers: { 'accept-encoding': 'gzip', authorization: 'token abc' },
    resolve: () =>
      Promise.resolve({
        outcome: 'ONLINE_HIT',
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8', link: '<https://api.github.com/repos/o/r?page=2>; rel="next"', etag: '"e"', vary: 'Accept' },
        body: enc(BODY),
        collapsed: false,
        fromCache: true,
        upstreamStatus: 304,
      }),
  },
  {
    name: 'a HEAD of that answer',
    method: 'HEAD',
    resolve: () => Promise.resolve({ outcome: 'FRESH_HIT', status: 200, headers: { 'content-type': 'application/json' }, body: enc(BODY), collapsed: false, fromCache: true, ttlSeconds: 5 }),
  },
  {
    name: 'a 200 without a content type, stale',
    resolve: () => Promise.resolve({ outcome: 'API_ERROR_HIT', status: 200, headers: {}, body: enc('plain'), collapsed: false, fromCache: true, staleAgeSeconds: 42, upstreamCause: 'upstream 502' }),
  },
  {
    name: 'a 304 to a conditional client',
    resolve: () => Promise.resolve({ outcome: 'ONLINE_HIT', status: 304, headers: { etag: '"e"' }, body: new Uint8Array(0), collapsed: false, fromCache: true, upstreamStatus: 304 }),
  },
  {
    name: 'a failure of the resolution',
    resolve: () =>
      Promise.resolve({ outcome: 'API_TIMEOUT_MISS', error: { code: ErrorCode.UPSTREAM_TIMEOUT, message: 'GitHub did not answer in time', cause: 'timeout' }, collapsed: false, fromCache: false }),
  },
  {
    name: 'a refusal of the allowlist',
    admit: () => Promise.reject(new MirrorError(ErrorCode.FORBIDDEN_USER, 'not on the allowlist')),
    resolve: () => Promise.reject(new Error('not reached')),
  },
  {
    name: 'an error the edge did not expect',
    resolve: () => Promise.reject(new Error('secret detail ghp_abcdefghijklmnopqrstuvwxyz0123456789')),
  },
];

for (const c of cases) {
  test(`the fast path and fastify's route give the same answer and line: ${c.name}`, async (t) => {
    const { app, lines, bus, throughFastify, url } = await start(c.resolve, c.admit ? { admit: c.admit } : {});
    t.teardown(() => app.close());
    const method = c.method ?? 'GET';
    const fast = await send(url, method, '/repos/o/r?per_page=1', c.headers);
    const fastLines = lines.splice(0);
    const injected = await app.inject({ method: method as 'GET', url: '/repos/o/r?per_page=1', headers: { ...c.headers, host: new URL(url).host } });
    const injectedLines = lines.splice(0);
    t.deepEqual(throughFastify, [`${method} /repos/o/r?per_page=1`], 'only the injected request went through fastify');
    t.is(fast.status, injected.statusCode);
    t.deepEqual(meaningful(fast.headers), meaningful(injected.headers));
    t.deepEqual(fast.body, injected.rawPayload);
    if (fast.headers['content-encoding'] === 'gzip') t.true(gunzipSync(fast.body).toString().includes('"url":"http://127.0.0.1:'), 'rewritten to the public URL');
    t.deepEqual(
      fastLines.map((line) => lineOf(line)),
      injectedLines.map((line) => lineOf(line)),
    );
    t.true(fastLines.some((line) => line['msg'] === 'request'));
    t.false(JSON.stringify(fastLines).includes('ghp_'), 'no secret in a line');
    if (fast.status === 500) t.deepEqual(JSON.parse(fast.body.toString()), { message: 'Internal mirror error', code: 'INTERNAL' });
    t.is(bus.named(EventName.httpCompleted).length, 2);
  });
}

test('GET and HEAD over a socket skip fastify; other methods, reserved paths and refused targets do not', async (t) => {
  const ok: Resolution = { outcome: 'ONLINE_MISS', status: 200, headers: { 'content-type': 'application/json' }, body: enc('{}'), collapsed: false, fromCache: false, upstreamStatus: 200 };
  const { app, lines, throughFastify, url } = await start(() => Promise.resolve(ok));
  t.teardown(() => app.close());
  t.is((await send(url, 'GET', '/repos/o/r')).status, 200);
  t.is((await send(url, 'HEAD', '/api/v3/repos/o/r')).status, 200);
  t.is((await send(url, 'POST', '/repos/o/r/issues', { 'content-type': 'application/json' })).status, 201);
  t.is((await send(url, 'GET', '/healthz')).status, 200);
  const refused = await send(url, 'GET', '/repos/o/%2e%2e/x');
  t.is(refused.status, 400);
  t.is((JSON.parse(refused.body.toString()) as { code: string }).code, ErrorCode.BAD_REQUEST_TARGET);
  t.is((await send(url, 'HEAD', '/metrics')).status, 405);
  t.deepEqual(throughFastify, ['POST /repos/o/r/issues', 'GET /healthz', 'GET /repos/o/%2e%2e/x', 'HEAD /metrics']);
  // one sequence of request ids for both ways of answering
  const ids = lines.filter((line) => line['msg'] === 'request').map((line) => line['reqId']);
  t.is(new Set(ids).size, ids.length);
  t.deepEqual(ids.slice(0, 3), ['req-1', 'req-2', 'req-3']);
});

test('a fast-path request is listed in flight until answered; a client gone first leaves no line', async (t) => {
  let release: (() => void) | undefined;
  const ok: Resolution = { outcome: 'ONLINE_MISS', status: 200, headers: { 'content-type': 'application/json' }, body: enc('{}'), collapsed: false, fromCache: false, upstreamStatus: 200 };
  const resolve: Resolve = () =>
    new Promise((done) => {
      release = () => done(ok);
    });
  const { app, lines, bus, url } = await start(resolve);
  t.teardown(() => app.close());
  const req = httpRequest(`${url}/repos/o/r?access_token=secret`);
  req.on('error', () => undefined);
  req.end();
  while (release === undefined) await new Promise((r) => setTimeout(r, 5));
  t.like(app.mirrorInFlight(), [{ method: 'GET', path: '/repos/o/r?access_token=[redacted]', outcome: 'NONE' }]);
  req.destroy();
  while (app.mirrorInFlight().length > 0) await new Promise((r) => setTimeout(r, 5));
  release();
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(
    lines.filter((line) => line['msg'] === 'request'),
    [],
  );
  t.is(bus.named(EventName.httpCompleted).length, 0);
});
