/**
 * UpstreamBreaker: 5xx, timeouts and connection errors open it; open = UPSTREAM_OFFLINE at once without
 * touching the upstream; a background probe (anonymous GET /rate_limit) closes it again; close() leaves
 * no timer behind. Unit tests over a scripted upstream, then the real undici adapter against a real
 * HTTP server laid out like GitHub Enterprise (/api/v3).
 */
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamBreaker, type UpstreamBreakerOptions } from '../../src/adapters/github/upstream-breaker.adapter.js';
import { UndiciUpstream } from '../../src/adapters/github/undici-upstream.adapter.js';
import { ErrorCode, MirrorError, isMirrorError } from '../../src/domain/errors.js';
import { EventName, type BreakerChangedEvent } from '../../src/domain/events/events.js';
import type { UpstreamRequest } from '../../src/domain/ports/upstream.port.js';
import { RecordingBus, ScriptedUpstream, json } from '../support/fakes.js';

const OPTIONS: UpstreamBreakerOptions = { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 40 };

const get = (target: string, authorization = 'token t'): UpstreamRequest => ({ method: 'GET', target, headers: { authorization } });

function breakerStates(bus: RecordingBus): string[] {
  return bus.named(EventName.breakerChanged).map((e) => (e as BreakerChangedEvent).state);
}

/** Waits until `check` holds, polling (bounded by a count, not by a clock assertion). */
async function eventually(check: () => boolean, tries = 200, stepMs = 10): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return check();
}

const closers: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const close of closers) await close();
});

function makeSut(respond: ConstructorParameters<typeof ScriptedUpstream>[0], options: Partial<UpstreamBreakerOptions> = {}) {
  const upstream = new ScriptedUpstream(respond);
  const bus = new RecordingBus();
  const breaker = new UpstreamBreaker(upstream, bus, { ...OPTIONS, ...options });
  closers.push(() => breaker.close());
  return { upstream, bus, breaker };
}

test('answers below 500 pass through and keep it closed; 5xx answers are returned as they are', async (t) => {
  const { breaker, upstream } = makeSut((r) => (r.target === '/boom' ? json(503, { message: 'down' }) : json(404, { message: 'Not Found' })));
  for (let i = 0; i < 10; i++) t.is((await breaker.fetch(get('/x'))).status, 404);
  t.is((await breaker.fetch(get('/boom'))).status, 503);
  t.is(breaker.state, 'closed');
  t.is(upstream.requests.length, 11);
});

test('repeated 5xx open it: calls then reject with UPSTREAM_OFFLINE at once, without reaching upstream', async (t) => {
  let healthy = false;
  const { breaker, upstream, bus } = makeSut(() => (healthy ? json(200, { ok: true }) : json(502, { message: 'Bad Gateway' })), { resetTimeoutMs: 60_000 });
  for (let i = 0; i < 3; i++) t.is((await breaker.fetch(get('/r'))).status, 502);
  t.is(breaker.state, 'open');
  const before = upstream.requests.length;
  healthy = true;
  for (let i = 0; i < 20; i++) {
    const error = await t.throwsAsync(breaker.fetch(get('/r')));
    t.true(isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE));
  }
  const forwarded = await t.throwsAsync(breaker.forward({ method: 'POST', target: '/r', headers: {} }));
  t.true(isMirrorError(forwarded, ErrorCode.UPSTREAM_OFFLINE));
  t.is(upstream.requests.length, before, 'nothing reached upstream while open');
  t.deepEqual(breakerStates(bus), ['open']);
  t.like(bus.named(EventName.breakerChanged)[0], { breaker: 'upstream' });
});

test('timeouts and connection errors open it; a body too large does not count', async (t) => {
  const timeouts = makeSut(() => new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'slow'), { resetTimeoutMs: 60_000 });
  for (let i = 0; i < 3; i++) await t.throwsAsync(timeouts.breaker.fetch(get('/r')));
  t.is(timeouts.breaker.state, 'open');

  const unreachable = makeSut(() => new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'reset'), { resetTimeoutMs: 60_000 });
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(unreachable.breaker.fetch(get('/r')));
    t.true(isMirrorError(error, ErrorCode.UPSTREAM_UNREACHABLE), 'the original error before it opens');
  }
  t.is(unreachable.breaker.state, 'open');

  const large = makeSut(() => new MirrorError(ErrorCode.UPSTREAM_BODY_TOO_LARGE, 'big'), { resetTimeoutMs: 60_000 });
  for (let i = 0; i < 10; i++) {
    const error = await t.throwsAsync(large.breaker.fetch(get('/r')));
    t.true(isMirrorError(error, ErrorCode.UPSTREAM_BODY_TOO_LARGE));
  }
  t.is(large.breaker.state, 'closed');
});

test('a background probe (anonymous GET /rate_limit) closes it once upstream answers below 500', async (t) => {
  let healthy = false;
  const { breaker, upstream, bus } = makeSut((r) => {
    if (!healthy) return new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'refused');
    return r.target === '/rate_limit' ? json(404, { message: 'Rate limiting is not enabled.' }) : json(200, { ok: true });
  });
  for (let i = 0; i < 3; i++) await t.throwsAsync(breaker.fetch(get('/r')));
  t.is(breaker.state, 'open');
  // While upstream stays down, probes fail and the breaker opens again, without any client call.
  t.true(await eventually(() => upstream.requests.filter((r) => r.target === '/rate_limit').length >= 2));
  t.not(breaker.state, 'closed');
  healthy = true;
  t.true(await eventually(() => breaker.state === 'closed'), 'recovered by itself');
  const probes = upstream.requests.filter((r) => r.target === '/rate_limit');
  t.true(probes.every((p) => p.method === 'GET' && p.headers['authorization'] === undefined), 'probes carry no credential');
  t.is((await breaker.fetch(get('/r'))).status, 200);
  const states = breakerStates(bus);
  t.is(states[0], 'open');
  t.true(states.includes('half_open'));
  t.is(states.at(-1), 'closed');
});

test('a probe answered 5xx opens it again', async (t) => {
  let probeStatus = 503;
  const { breaker, upstream } = makeSut((r) => (r.target === '/rate_limit' ? json(probeStatus, {}) : json(500, {})));
  for (let i = 0; i < 3; i++) await breaker.fetch(get('/r'));
  t.is(breaker.state, 'open');
  t.true(await eventually(() => upstream.requests.filter((r) => r.target === '/rate_limit').length >= 1));
  t.true(await eventually(() => breaker.state === 'open'));
  probeStatus = 403;
  t.true(await eventually(() => breaker.state === 'closed'), 'a 403 (rate limited, but up) counts as up');
});

test.serial('close() shuts it down and leaves no timer behind', async (t) => {
  // Track every timer created while the breaker lives (opossum's timers are unref'd, so the event loop
  // would not show them): created minus cleared minus fired must come back to zero after close().
  const live = new Set<unknown>();
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const realSetInterval = globalThis.setInterval;
  const realClearInterval = globalThis.clearInterval;
  const patched = {
    setTimeout: ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const handle = realSetTimeout(
        (...a: unknown[]) => {
          live.delete(handle);
          fn(...a);
        },
        ms,
        ...args,
      );
      live.add(handle);
      return handle;
    }) as typeof setTimeout,
    clearTimeout: ((handle?: Parameters<typeof clearTimeout>[0]) => {
      live.delete(handle);
      realClearTimeout(handle);
    }) as typeof clearTimeout,
    setInterval: ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const handle = realSetInterval(fn, ms, ...args);
      live.add(handle);
      return handle;
    }) as typeof setInterval,
    clearInterval: ((handle?: Parameters<typeof clearInterval>[0]) => {
      live.delete(handle);
      realClearInterval(handle);
    }) as typeof clearInterval,
  };
  Object.assign(globalThis, patched);
  try {
    const upstream = new ScriptedUpstream(() => new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'slow'));
    const breaker = new UpstreamBreaker(upstream, new RecordingBus(), { ...OPTIONS, resetTimeoutMs: 60_000 });
    for (let i = 0; i < 3; i++) await t.throwsAsync(breaker.fetch(get('/r')));
    t.is(breaker.state, 'open');
    t.true(live.size > 0, 'the breaker had timers running (rolling window, reset timer)');
    await breaker.close();
    t.is(live.size, 0);
    // After close the breaker is out of the way: calls reach the upstream again.
    upstream.respond = () => json(200, {});
    t.is((await breaker.fetch(get('/r'))).status, 200);
  } finally {
    Object.assign(globalThis, { setTimeout: realSetTimeout, clearTimeout: realClearTimeout, setInterval: realSetInterval, clearInterval: realClearInterval });
  }
});

// ---- the real undici adapter, GitHub Enterprise layout ------------------------------------------

interface Recorded {
  url: string;
  authorization: string | undefined;
}

async function enterpriseServer(): Promise<{ server: Server; url: string; calls: Recorded[]; setDown: (down: boolean) => void }> {
  const calls: Recorded[] = [];
  let down = false;
  const server = createServer((req, res) => {
    calls.push({ url: req.url ?? '', authorization: req.headers.authorization });
    if (down) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"Service Unavailable"}');
      return;
    }
    // GitHub Enterprise Server with rate limiting disabled answers 404 on /rate_limit: still "up".
    const status = req.url === '/api/v3/rate_limit' ? 404 : 200;
    res.writeHead(status, { 'content-type': 'application/json', etag: '"e"' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, url, calls, setDown: (value) => (down = value) };
}

test('over undici against an Enterprise base URL: opens on 503s, probes /api/v3/rate_limit, recovers', async (t) => {
  const ghe = await enterpriseServer();
  const undici = new UndiciUpstream({ url: `${ghe.url}/api/v3`, timeoutMs: 2000, connectTimeoutMs: 1000, connections: 4, maxBodyBytes: 1 << 20 });
  const bus = new RecordingBus();
  const breaker = new UpstreamBreaker(undici, bus, { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 50 });
  closers.push(() => breaker.close());

  t.is((await breaker.fetch(get('/repos/o/r'))).status, 200);
  ghe.setDown(true);
  // 1 success then 2 failures: 66 % failed over 3 calls, above the 50 % threshold.
  for (let i = 0; i < 2; i++) t.is((await breaker.fetch(get('/repos/o/r'))).status, 503);
  t.is(breaker.state, 'open');
  const error = await t.throwsAsync(breaker.fetch(get('/repos/o/r')));
  t.true(isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE));
  ghe.setDown(false);
  t.true(await eventually(() => breaker.state === 'closed'), 'recovered by itself');
  const probes = ghe.calls.filter((c) => c.url === '/api/v3/rate_limit');
  t.true(probes.length >= 1);
  t.true(probes.every((p) => p.authorization === undefined));
  t.true(ghe.calls.every((c) => c.url.startsWith('/api/v3/')));
  t.is((await breaker.fetch(get('/repos/o/r'))).status, 200);
});
