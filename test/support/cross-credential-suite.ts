/**
 * Cross-credential revalidation (issue 16) as use-case tests, written once and run against every
 * CachePort adapter in the shared layout (memory, Redis): ResolveResource with the collaborator, in
 * front of a scripted upstream that applies GitHub's ETag formula (test/support/github-etag.ts), an
 * If-None-Match list with the weak comparison, access rules and per-credential bodies.
 */
import type { TestFn } from 'ava';
import type { CachePort } from '../../src/domain/ports/cache.port.js';
import { ResolveResource, type ResolveResourceOptions } from '../../src/domain/use-cases/resolve-resource.js';
import { CrossCredentialRevalidation } from '../../src/domain/use-cases/cross-credential-revalidation.js';
import { MirrorError, ErrorCode } from '../../src/domain/errors.js';
import { EventName, type CrossCredentialRevalidationEvent } from '../../src/domain/events/events.js';
import type { BufferedResponse, UpstreamRequest } from '../../src/domain/ports/upstream.port.js';
import { nodeDigest } from '../../src/adapters/crypto/node-digest.adapter.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { githubEtag } from './github-etag.js';
import { answerOf, dec, FakeClock, RecordingBus, ScriptedUpstream } from './fakes.js';
import { get as plainGet } from './use-case-suite.js';
import type { ResolveRequest } from '../../src/domain/use-cases/resolve-resource.js';

/** A request as the edge hands it over: the credential is also the Authorization header sent upstream. */
function get(path: string, init: Partial<ResolveRequest> & { credential: string | undefined }): ResolveRequest {
  const headers = { ...init.headers };
  if (init.credential !== undefined) headers['authorization'] = init.credential;
  return plainGet(path, { ...init, headers });
}

export interface CrossCredentialContext {
  /** A cache in the shared layout (body keys from SECRET). */
  makeCache: () => Promise<CachePort>;
}

export const SECRET = 'cross-credential-suite-secret';

interface Resource {
  body: unknown;
  /** Bodies per credential (a repository's permissions). */
  per?: Record<string, unknown>;
  /** Credentials that may read it; absent = anyone. */
  allow?: string[];
}

/** What GitHub would answer, by path; `fault` replaces the next answers. */
function formulaUpstream(resources: Map<string, Resource>) {
  const state: { fault: Error | BufferedResponse | undefined; wrongEtag: boolean } = { fault: undefined, wrongEtag: false };
  const upstream = new ScriptedUpstream((request: UpstreamRequest) => {
    if (state.fault !== undefined) return state.fault;
    const path = request.target.split('?')[0] as string;
    const credential = typeof request.headers['authorization'] === 'string' ? request.headers['authorization'] : undefined;
    const resource = resources.get(path);
    const base = { 'content-type': 'application/json; charset=utf-8', vary: 'Accept, Authorization, Cookie', 'x-ratelimit-remaining': '4999' };
    if (resource === undefined || (resource.allow !== undefined && (credential === undefined || !resource.allow.includes(credential)))) {
      return { status: 404, headers: base, body: Buffer.from('{"message":"Not Found"}') };
    }
    const body = Buffer.from(JSON.stringify(credential !== undefined && resource.per?.[credential] !== undefined ? resource.per[credential] : resource.body));
    const etag = githubEtag({ accept: request.headers['accept'], authorization: credential }, body);
    const ifNoneMatch = request.headers['if-none-match'];
    const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
    if (typeof ifNoneMatch === 'string' && ifNoneMatch.split(',').some((tag) => opaque(tag) === opaque(etag))) {
      return { status: 304, headers: { ...base, etag: state.wrongEtag ? 'W/"something-else"' : etag, 'x-oauth-scopes': `scopes of ${credential}` }, body: new Uint8Array(0) };
    }
    return { status: 200, headers: { ...base, etag, 'x-oauth-scopes': `scopes of ${credential}`, 'cache-control': 'private, max-age=60' }, body };
  });
  return { upstream, state };
}

export function makeSharedSut(cache: CachePort, options: Partial<ResolveResourceOptions> = {}) {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const resources = new Map<string, Resource>();
  const { upstream, state } = formulaUpstream(resources);
  const cross = new CrossCredentialRevalidation(cache, nodeDigest, bus);
  const sut = new ResolveResource(
    cache,
    upstream,
    new HmacKeyHasher(SECRET),
    bus,
    clock,
    { ttlSeconds: 3600, maxEntryBytes: 1024 * 1024, freshnessMs: 0, revalidationWriteMs: 60_000, ...options },
    undefined,
    cross,
  );
  const attempts = () => bus.named(EventName.crossCredentialRevalidation) as CrossCredentialRevalidationEvent[];
  return { sut, clock, bus, upstream, resources, state, attempts };
}

const A = 'token alpha';
const B = 'token bravo';
const C = 'token charlie';
const ACCEPT = { accept: 'application/vnd.github+json' };

export function crossCredentialSuite(test: TestFn<CrossCredentialContext>): void {
  test('a credential with no entry gets another’s body through its own 304, and keeps its own entry', async (t) => {
    const { sut, upstream, resources, attempts } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/r', { body: { name: 'r' } });
    const first = answerOf(await sut.execute(get('/repos/o/r', { credential: A, headers: ACCEPT })));
    const shared = answerOf(await sut.execute(get('/repos/o/r', { credential: B, headers: ACCEPT })));
    t.is(shared.outcome, 'ONLINE_HIT');
    t.is(shared.sharedBody, 'shared');
    t.is(shared.upstreamStatus, 304);
    t.is(dec(shared.body), dec(first.body));
    const offered = upstream.requests[1]?.headers['if-none-match'];
    t.is(offered, githubEtag({ accept: ACCEPT.accept, authorization: B }, first.body), 'B’s own ETag for the stored body');
    t.is(shared.headers['x-oauth-scopes'], `scopes of ${B}`, 'B’s scopes, never A’s');
    t.is(shared.headers['etag'], offered as string);
    t.deepEqual(
      attempts().map((e) => [e.result, e.quotaSaved, e.served, e.guess]),
      [
        ['200', 0, undefined, true],
        ['304', 1, 'shared', false],
      ],
      'A’s first read offered the empty-list guess (nothing stored yet); B’s the stored body',
    );
    // B's next request revalidates its own entry with its own ETag
    const again = answerOf(await sut.execute(get('/repos/o/r', { credential: B, headers: ACCEPT })));
    t.is(again.outcome, 'ONLINE_HIT');
    t.is(again.sharedBody, undefined);
    t.is(upstream.requests[2]?.headers['if-none-match'], offered);
    t.is(attempts().length, 2);
  });

  test('a 304 naming none of the ETags offered is a miss: the resource is fetched unconditionally', async (t) => {
    const { sut, upstream, resources, state, attempts } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/r', { body: { name: 'r' } });
    await sut.execute(get('/repos/o/r', { credential: A }));
    state.wrongEtag = true;
    const answer = answerOf(await sut.execute(get('/repos/o/r', { credential: B })));
    t.is(answer.outcome, 'ONLINE_MISS');
    t.is(answer.status, 200);
    t.deepEqual(JSON.parse(dec(answer.body)), { name: 'r' });
    t.is(upstream.requests.length, 3);
    t.truthy(upstream.requests[1]?.headers['if-none-match']);
    t.is(upstream.requests[2]?.headers['if-none-match'], undefined);
    t.deepEqual(
      attempts().map((e) => [e.result, e.guess]),
      [
        ['200', true],
        ['200', false],
      ],
    );
  });

  test('per-credential bodies: up to 4 stored bodies in one list, the 304’s ETag picks the right one', async (t) => {
    const { sut, upstream, resources } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/p', { body: { permissions: 'read' }, per: { [A]: { permissions: 'admin' } } });
    t.deepEqual(JSON.parse(dec(answerOf(await sut.execute(get('/repos/o/p', { credential: A }))).body)), { permissions: 'admin' });
    const b = answerOf(await sut.execute(get('/repos/o/p', { credential: B })));
    t.is(b.outcome, 'ONLINE_MISS', 'A’s body is not B’s: GitHub answered 200');
    t.deepEqual(JSON.parse(dec(b.body)), { permissions: 'read' });
    const c = answerOf(await sut.execute(get('/repos/o/p', { credential: C })));
    t.is(c.outcome, 'ONLINE_HIT');
    t.deepEqual(JSON.parse(dec(c.body)), { permissions: 'read' }, 'the body B got, not A’s');
    const offered = String(upstream.requests.at(-1)?.headers['if-none-match']).split(', ');
    t.is(offered.length, 2, 'both stored bodies offered');
    const admin2 = 'token admin-two';
    resources.get('/repos/o/p')!.per![admin2] = { permissions: 'admin' };
    const second = answerOf(await sut.execute(get('/repos/o/p', { credential: admin2 })));
    t.is(second.outcome, 'ONLINE_HIT');
    t.deepEqual(JSON.parse(dec(second.body)), { permissions: 'admin' });
  });

  test('nothing stored: the empty-list guess answers [] for free; a non-list resource answers 200 as before', async (t) => {
    const { sut, upstream, resources, attempts } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/r/issues', { body: [] });
    resources.set('/repos/o/r', { body: { name: 'r' } });
    const empty = answerOf(await sut.execute(get('/repos/o/r/issues', { credential: A })));
    t.is(empty.outcome, 'ONLINE_HIT');
    t.is(empty.sharedBody, 'guess');
    t.is(dec(empty.body), '[]');
    t.regex(empty.headers['content-type'] ?? '', /^application\/json/);
    t.is(upstream.requests[0]?.headers['if-none-match'], githubEtag({ authorization: A }, '[]'));
    const stored = answerOf(await sut.execute(get('/repos/o/r/issues', { credential: A })));
    t.is(stored.outcome, 'ONLINE_HIT');
    t.is(stored.sharedBody, undefined, 'its own entry now');
    const single = answerOf(await sut.execute(get('/repos/o/r', { credential: A })));
    t.is(single.outcome, 'ONLINE_MISS');
    t.deepEqual(JSON.parse(dec(single.body)), { name: 'r' });
    t.deepEqual(
      attempts().map((e) => [e.result, e.guess]),
      [
        ['304', true],
        ['200', true],
      ],
    );
  });

  test('a credential without access never gets the body: 404 on the 304 path, *_MISS when upstream fails', async (t) => {
    const { sut, resources, state, attempts } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/private', { body: { secret: 'only A' }, allow: [A] });
    await sut.execute(get('/repos/o/private', { credential: A }));
    const denied = answerOf(await sut.execute(get('/repos/o/private', { credential: B })));
    t.is(denied.status, 404);
    t.false(dec(denied.body).includes('only A'));
    const head = answerOf(await sut.execute(get('/repos/o/private', { credential: B, method: 'HEAD' })));
    t.is(head.status, 404);
    state.fault = new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'timeout');
    const timeout = await sut.execute(get('/repos/o/private', { credential: B }));
    t.is(timeout.outcome, 'API_TIMEOUT_MISS');
    t.is(timeout.body, undefined);
    state.fault = { status: 503, headers: {}, body: Buffer.from('down') };
    const down = answerOf(await sut.execute(get('/repos/o/private', { credential: B })));
    t.is(down.outcome, 'API_ERROR_MISS');
    t.is(dec(down.body), 'down');
    state.fault = { status: 429, headers: { 'retry-after': '60' }, body: Buffer.from('slow down') };
    t.is((await sut.execute(get('/repos/o/private', { credential: B }))).outcome, 'RATE_LIMITED_MISS');
    state.fault = undefined;
    t.deepEqual(
      attempts().map((e) => e.result),
      ['200', '200', '200', 'error', 'error', 'error'],
    );
    // the owner's own stale answers stay its own
    state.fault = new MirrorError(ErrorCode.UPSTREAM_UNREACHABLE, 'down');
    const own = answerOf(await sut.execute(get('/repos/o/private', { credential: A })));
    t.is(own.outcome, 'API_CONNECTION_ERROR_HIT');
    t.true(dec(own.body).includes('only A'));
  });

  test('the client’s own If-None-Match is compared with its own validated ETag only', async (t) => {
    const { sut, resources } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/r', { body: { name: 'r' } });
    const a = answerOf(await sut.execute(get('/repos/o/r', { credential: A })));
    const withA = answerOf(await sut.execute(get('/repos/o/r', { credential: B, headers: { 'if-none-match': a.headers['etag'] as string } })));
    t.is(withA.status, 200, 'A’s ETag is not B’s');
    const bTag = withA.headers['etag'] as string;
    const withB = answerOf(await sut.execute(get('/repos/o/r', { credential: C, headers: { 'if-none-match': githubEtag({ authorization: C }, a.body) } })));
    t.is(withB.status, 304, 'C’s own ETag, which GitHub just confirmed for C');
    t.not(bTag, a.headers['etag']);
  });

  test('no cross-credential revalidation for anonymous requests, nor within the freshness window', async (t) => {
    const { sut, upstream, resources } = makeSharedSut(await t.context.makeCache(), { freshnessMs: 30_000 });
    resources.set('/repos/o/r', { body: { name: 'r' } });
    await sut.execute(get('/repos/o/r', { credential: A }));
    t.is((await sut.execute(get('/repos/o/r', { credential: A }))).outcome, 'FRESH_HIT');
    const anon = answerOf(await sut.execute(get('/repos/o/r', { credential: undefined })));
    t.is(anon.outcome, 'ONLINE_MISS');
    t.is(upstream.requests.at(-1)?.headers['if-none-match'], undefined);
    const b = await sut.execute(get('/repos/o/r', { credential: B }));
    t.is(b.outcome, 'ONLINE_HIT', 'B asked GitHub (a 304), never served from A’s freshness');
    t.is(upstream.requests.length, 3, 'A once, anonymous once, B once');
  });

  test('a full first page is never offered (GitHub may 304 it although an item went to page 2)', async (t) => {
    const { sut, upstream, resources } = makeSharedSut(await t.context.makeCache());
    resources.set('/repos/o/r/issues', { body: [{ n: 1 }, { n: 2 }] });
    await sut.execute(get('/repos/o/r/issues?per_page=2', { credential: A }));
    const b = answerOf(await sut.execute(get('/repos/o/r/issues?per_page=2', { credential: B })));
    t.is(b.outcome, 'ONLINE_MISS');
    t.is(upstream.requests[1]?.headers['if-none-match'], undefined, 'nothing to offer: no stored body fits, and something is stored');
  });
}
