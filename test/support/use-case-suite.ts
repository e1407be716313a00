/**
 * The use-case tests, written once and run against every CachePort adapter (memory, Redis):
 * the domain must behave the same whatever holds the entries.
 */
import type { TestFn } from 'ava';
import type { CachePort } from '../../src/domain/ports/cache.port.js';
import { ResolveResource, type ResolveRequest, type ResolveResourceOptions } from '../../src/domain/use-cases/resolve-resource.js';
import { MirrorError, ErrorCode } from '../../src/domain/errors.js';
import { EventName } from '../../src/domain/events/events.js';
import type { Outcome } from '../../src/domain/model.js';
import { FakeClock, RecordingBus, PlainKeyHasher, ScriptedUpstream, json, dec, answerOf } from './fakes.js';

export interface SuiteContext {
  makeCache: () => Promise<CachePort>;
}

export function makeSut(cache: CachePort, options: Partial<ResolveResourceOptions> = {}) {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  let etag = '"v1"';
  let body: unknown = { name: 'hello-world', v: 1 };
  const upstream = new ScriptedUpstream((request) => {
    if (request.headers['if-none-match'] === etag) return json(304, undefined, { etag });
    return json(200, body, { etag, 'cache-control': 'private, max-age=60' });
  });
  const sut = new ResolveResource(cache, upstream, new PlainKeyHasher(), bus, clock, {
    ttlSeconds: 3600,
    maxEntryBytes: 1024 * 1024,
    freshnessMs: 0,
    revalidationWriteMs: 60_000,
    ...options,
  });
  return {
    sut,
    clock,
    bus,
    upstream,
    change(next: unknown, nextEtag: string) {
      body = next;
      etag = nextEtag;
    },
  };
}

export function get(path: string, init: Partial<ResolveRequest> = {}): ResolveRequest {
  const q = path.indexOf('?');
  return {
    method: 'GET',
    target: path,
    path: q === -1 ? path : path.slice(0, q),
    query: q === -1 ? '' : path.slice(q + 1),
    headers: {},
    credential: 'token a',
    ...init,
  };
}

export function useCaseSuite(test: TestFn<SuiteContext>): void {
  test('first GET misses, second revalidates with the ETag and hits', async (t) => {
    const { sut, upstream } = makeSut(await t.context.makeCache());
    const first = await sut.execute(get('/repos/o/r'));
    t.is(first.outcome, 'ONLINE_MISS');
    const second = await sut.execute(get('/repos/o/r'));
    t.is(second.outcome, 'ONLINE_HIT');
    t.is(upstream.requests[1]?.headers['if-none-match'], '"v1"');
    t.is(dec(answerOf(second).body), dec(answerOf(first).body));
    t.is(second.upstreamStatus, 304);
  });

  test('a changed resource is a miss with the new body, then a hit on it', async (t) => {
    const { sut, change } = makeSut(await t.context.makeCache());
    await sut.execute(get('/r'));
    change({ v: 2 }, '"v2"');
    const changed = await sut.execute(get('/r'));
    t.is(changed.outcome, 'ONLINE_MISS');
    t.deepEqual(JSON.parse(dec(answerOf(changed).body)), { v: 2 });
    t.is((await sut.execute(get('/r'))).outcome, 'ONLINE_HIT');
  });

  test('credentials are separate partitions, anonymous included', async (t) => {
    const { sut, upstream } = makeSut(await t.context.makeCache());
    await sut.execute(get('/r', { credential: 'token a' }));
    t.is((await sut.execute(get('/r', { credential: 'token b' }))).outcome, 'ONLINE_MISS');
    t.is((await sut.execute(get('/r', { credential: undefined }))).outcome, 'ONLINE_MISS');
    t.is((await sut.execute(get('/r', { credential: undefined }))).outcome, 'ONLINE_HIT');
    t.is(upstream.requests.length, 4);
  });

  test('the client sees 304 without a body when its If-None-Match matches', async (t) => {
    const { sut } = makeSut(await t.context.makeCache());
    await sut.execute(get('/r'));
    const answer = await sut.execute(get('/r', { headers: { 'if-none-match': '"v1"' } }));
    t.is(answer.status, 304);
    t.is(answerOf(answer).body.byteLength, 0);
    t.is(answer.outcome, 'ONLINE_HIT');
  });

  test('upstream 5xx, timeout, connection error and rate limit serve the cached body with a stale age', async (t) => {
    const { sut, upstream, clock } = makeSut(await t.context.makeCache());
    const first = await sut.execute(get('/r'));
    clock.advance(42_000);
    const cases: Array<[() => ReturnType<typeof json> | Error, Outcome]> = [
      [() => json(502, { message: 'bad gateway' }), 'API_ERROR_HIT'],
      [() => new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 't'), 'API_TIMEOUT_HIT'],
      [() => new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'c'), 'API_CONNECTION_ERROR_HIT'],
      [() => new MirrorError(ErrorCode.UPSTREAM_OFFLINE, 'o'), 'OFFLINE_HIT'],
      [() => json(403, { message: 'API rate limit exceeded' }, { 'x-ratelimit-remaining': '0' }), 'RATE_LIMITED_HIT'],
      [() => json(429, { message: 'secondary rate limit' }, { 'retry-after': '30' }), 'RATE_LIMITED_HIT'],
    ];
    for (const [answer, outcome] of cases) {
      upstream.respond = answer;
      const served = await sut.execute(get('/r'));
      t.is(served.outcome, outcome);
      t.is(served.status, 200);
      t.is(dec(answerOf(served).body), dec(answerOf(first).body));
      t.is(served.staleAgeSeconds, 42);
    }
  });

  test("a governor's held answer is served like GitHub's 429 but is no upstream call: refused, nothing counted against a quota", async (t) => {
    const { sut, upstream, bus, clock } = makeSut(await t.context.makeCache());
    await sut.execute(get('/r'));
    clock.advance(5000);
    const held = () => ({ ...json(429, { message: 'held', code: 'SECONDARY_RATE_LIMITED' }, { 'retry-after': '20' }), held: true as const });
    upstream.respond = held;
    const before = bus.named(EventName.upstreamCalled).length;
    const served = await sut.execute(get('/r', { headers: { 'user-agent': 'bot/1' } }));
    t.is(served.outcome, 'RATE_LIMITED_HIT');
    t.is(served.status, 200);
    const miss = await sut.execute(get('/new'));
    t.is(miss.outcome, 'RATE_LIMITED_MISS');
    t.is(answerOf(miss).headers['retry-after'], '20');
    const calls = bus.named(EventName.upstreamCalled).slice(before);
    t.is(calls.length, 2);
    t.like(calls[0], { result: 'refused', countedAgainstQuota: false, conditional: true, userAgent: 'bot/1' });
    t.like(calls[1], { result: 'refused', countedAgainstQuota: false, conditional: false });
    t.is((calls[0] as { status?: number }).status, undefined);
  });

  test('without an entry, failures are passed on or answered with the mirror JSON error', async (t) => {
    const { sut, upstream } = makeSut(await t.context.makeCache());
    upstream.respond = () => json(503, { message: 'unavailable' });
    t.is((await sut.execute(get('/a'))).outcome, 'API_ERROR_MISS');
    upstream.respond = () => new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 't');
    const timeout = await sut.execute(get('/b'));
    // the mirror's own failures carry a code, no HTTP status (test/adapters/http-server.test.ts and the
    // e2e outcomes test check the 504 / 502 / 504 and the JSON the HTTP adapter makes of them)
    t.is(timeout.outcome, 'API_TIMEOUT_MISS');
    t.is(timeout.status, undefined);
    t.deepEqual(timeout.error, { code: 'UPSTREAM_TIMEOUT', message: 'GitHub did not answer in time', cause: 'UPSTREAM_TIMEOUT: t' });
    upstream.respond = () => new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'c');
    const unreachable = await sut.execute(get('/c'));
    t.is(unreachable.outcome, 'API_CONNECTION_ERROR_MISS');
    t.is(unreachable.error?.code, 'UPSTREAM_UNREACHABLE');
    upstream.respond = () => new MirrorError(ErrorCode.UPSTREAM_OFFLINE, 'o');
    const offline = await sut.execute(get('/d'));
    t.is(offline.outcome, 'OFFLINE_MISS');
    t.is(offline.error?.code, 'UPSTREAM_OFFLINE');
    upstream.respond = () => json(429, { message: 'slow down' }, { 'retry-after': '5' });
    const limited = await sut.execute(get('/e'));
    t.is(limited.outcome, 'RATE_LIMITED_MISS');
    t.is(answerOf(limited).headers['retry-after'], '5');
  });

  test('full-page guard: a full page without a next link is fetched unconditionally', async (t) => {
    const cache = await t.context.makeCache();
    const { sut, upstream } = makeSut(cache);
    const page = Array.from({ length: 2 }, (_, i) => ({ id: i }));
    upstream.respond = (request) =>
      request.headers['if-none-match'] === '"p"' ? json(304, undefined, { etag: '"p"' }) : json(200, page, { etag: '"p"' });
    await sut.execute(get('/repos/o/r/issues?per_page=2'));
    await sut.execute(get('/repos/o/r/issues?per_page=2'));
    t.is(upstream.requests[1]?.headers['if-none-match'], undefined, 'full page: no validator');
    await sut.execute(get('/repos/o/r/issues?per_page=3'));
    await sut.execute(get('/repos/o/r/issues?per_page=3'));
    t.is(upstream.requests[3]?.headers['if-none-match'], '"p"', 'partial page: conditional');
  });

  test('50 concurrent identical cold GETs make one upstream call and all get the body', async (t) => {
    const { sut, upstream, bus } = makeSut(await t.context.makeCache());
    const slow = upstream.respond;
    upstream.respond = async (r) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return slow(r);
    };
    const answers = await Promise.all(Array.from({ length: 50 }, () => sut.execute(get('/r'))));
    t.is(upstream.requests.length, 1);
    t.true(answers.every((a) => a.status === 200 && JSON.parse(dec(a.body)).v === 1));
    t.is(answers.filter((a) => a.collapsed).length, 49);
    t.is(bus.named(EventName.coalesced).length, 49);
  });

  test('freshness window serves FRESH_HIT without upstream, bounded by max-age', async (t) => {
    const { sut, upstream, clock } = makeSut(await t.context.makeCache(), { freshnessMs: 120_000 });
    await sut.execute(get('/r'));
    clock.advance(5_000);
    const fresh = await sut.execute(get('/r'));
    t.is(fresh.outcome, 'FRESH_HIT');
    t.is(upstream.requests.length, 1);
    clock.advance(60_000); // past max-age=60 although inside the window
    t.is((await sut.execute(get('/r'))).outcome, 'ONLINE_HIT');
  });

  test('a failing cache lookup is a miss, never an error', async (t) => {
    const cache = await t.context.makeCache();
    const broken: CachePort = {
      backend: cache.backend,
      lookup: () => Promise.reject(new Error('down')),
      store: () => Promise.reject(new Error('down')),
      forget: () => Promise.reject(new Error('down')),
      representations: () => Promise.reject(new Error('down')),
    };
    const { sut, bus } = makeSut(broken);
    t.is((await sut.execute(get('/r'))).outcome, 'ONLINE_MISS');
    t.true(bus.named(EventName.cacheError).length >= 2);
  });

  test('a 404 forgets the entry; bodies over maxEntryBytes and no-store answers are not kept', async (t) => {
    const { sut, upstream } = makeSut(await t.context.makeCache(), { maxEntryBytes: 10 });
    await sut.execute(get('/big'));
    t.is((await sut.execute(get('/big'))).outcome, 'ONLINE_MISS');
    upstream.respond = () => json(200, { a: 1 }, { etag: '"x"', 'cache-control': 'no-store' });
    await sut.execute(get('/ns'));
    t.is((await sut.execute(get('/ns'))).outcome, 'ONLINE_MISS');

  });

  test('per-response headers are never stored: a hit carries the 304 ones', async (t) => {
    const { sut, upstream } = makeSut(await t.context.makeCache());
    upstream.respond = (request) =>
      request.headers['if-none-match'] === '"v1"'
        ? json(304, undefined, { etag: '"v1"', 'x-ratelimit-remaining': '4000', 'x-github-request-id': 'B' })
        : json(200, { a: 1 }, { etag: '"v1"', 'x-ratelimit-remaining': '4999', 'x-github-request-id': 'A' });
    await sut.execute(get('/r'));
    const hit = await sut.execute(get('/r'));
    t.is(answerOf(hit).headers['x-ratelimit-remaining'], '4000');
    t.is(answerOf(hit).headers['x-github-request-id'], 'B');
  });
}
