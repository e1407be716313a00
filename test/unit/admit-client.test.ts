/**
 * AdmitClient (the allowlist) over the real ResolveResource, a memory cache and a scripted GitHub:
 * GET /user goes through the cache, verdicts are kept per credential hash for a bounded time and number.
 */
import test from 'ava';
import { AdmitClient, UserCheckFailed, type AdmitClientOptions } from '../../src/domain/use-cases/admit-client.js';
import { ResolveResource } from '../../src/domain/use-cases/resolve-resource.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { ErrorCode, MirrorError, isMirrorError } from '../../src/domain/errors.js';
import type { UpstreamRequest } from '../../src/domain/ports/upstream.port.js';
import { FakeClock, PlainKeyHasher, RecordingBus, ScriptedUpstream, json, dec, answerOf } from '../support/fakes.js';

interface Account {
  login: string;
  revoked?: boolean;
}

function makeSut(options: Partial<AdmitClientOptions> = {}) {
  const clock = new FakeClock();
  const accounts = new Map<string, Account>([
    ['token alice', { login: 'alice' }],
    ['token bob', { login: 'bob' }],
    ['token carol', { login: 'carol' }],
  ]);
  let failure: (() => ReturnType<typeof json> | Error) | undefined;
  const upstream = new ScriptedUpstream((request: UpstreamRequest) => {
    if (failure) return failure();
    const account = accounts.get(request.headers['authorization'] as string);
    if (account === undefined || account.revoked) return json(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    const etag = `"${account.login}"`;
    if (request.headers['if-none-match'] === etag) return json(304, undefined, { etag });
    return json(200, { login: account.login, id: 1 }, { etag });
  });
  const keys = new PlainKeyHasher();
  const resolver = new ResolveResource(new MemoryCache({ maxBytes: 1 << 20, clock }), upstream, keys, new RecordingBus(), clock, {
    ttlSeconds: 86_400,
    maxEntryBytes: 1 << 20,
    freshnessMs: 0,
  });
  const admit = new AdmitClient(resolver, keys, clock, { allowedUsers: ['Alice', 'BOB'], validationTtlSeconds: 300, ...options });
  return {
    admit,
    clock,
    upstream,
    accounts,
    userCalls: () => upstream.requests.filter((r) => r.target === '/user').length,
    fail(next: (() => ReturnType<typeof json> | Error) | undefined) {
      failure = next;
    },
  };
}

test('no credential: UNAUTHENTICATED, and GitHub is not asked', async (t) => {
  const { admit, userCalls } = makeSut();
  for (const credential of [undefined, '']) {
    const error = await t.throwsAsync(admit.execute(credential));
    t.true(isMirrorError(error, ErrorCode.UNAUTHENTICATED));
  }
  t.is(userCalls(), 0);
});

test('a login on the list is admitted, case-insensitively; the verdict is kept for the TTL', async (t) => {
  const { admit, userCalls, upstream } = makeSut();
  await t.notThrowsAsync(admit.execute('token alice'));
  await t.notThrowsAsync(admit.execute('token bob'));
  t.is(userCalls(), 2);
  const asked = upstream.requests[0];
  t.is(asked?.headers['authorization'], 'token alice', 'GET /user is sent with the client credential');
  t.truthy(asked?.headers['user-agent'], 'GitHub refuses requests without a User-Agent');
  for (let i = 0; i < 20; i++) await admit.execute('token alice');
  t.is(userCalls(), 2, 'kept verdicts are not asked again');
});

test('a login not on the list: FORBIDDEN_USER, also kept', async (t) => {
  const { admit, userCalls } = makeSut();
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(admit.execute('token carol'));
    t.true(isMirrorError(error, ErrorCode.FORBIDDEN_USER));
    t.false(error instanceof UserCheckFailed);
  }
  t.is(userCalls(), 1);
});

test('GET /user goes through the cache: after the TTL it is revalidated with the ETag (a free 304)', async (t) => {
  const { admit, clock, upstream } = makeSut();
  await admit.execute('token alice');
  clock.advance(301_000);
  await admit.execute('token alice');
  const calls = upstream.requests.filter((r) => r.target === '/user');
  t.is(calls.length, 2);
  t.is(calls[1]?.headers['if-none-match'], '"alice"');
});

test('a revoked token stops working once its verdict expires; GitHub\'s 401 is relayed as it is', async (t) => {
  const { admit, clock, accounts } = makeSut();
  await admit.execute('token alice');
  (accounts.get('token alice') as Account).revoked = true;
  await t.notThrowsAsync(admit.execute('token alice'), 'still trusted within the TTL');
  clock.advance(300_000);
  const error = await t.throwsAsync(admit.execute('token alice'));
  t.true(error instanceof UserCheckFailed);
  const answer = (error as UserCheckFailed).answer;
  t.is(answer.status, 401);
  t.is(JSON.parse(dec(answerOf(answer).body)).message, 'Bad credentials');
  t.is((error as UserCheckFailed).code, ErrorCode.USER_CHECK_FAILED);
});

test('an unknown token: the 401 is relayed and kept (no second /user call within the TTL)', async (t) => {
  const { admit, userCalls } = makeSut();
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(admit.execute('token nobody'));
    t.is((error as UserCheckFailed).answer.status, 401);
  }
  t.is(userCalls(), 1);
});

test('upstream errors on /user with nothing cached are relayed with their status and not kept', async (t) => {
  const { admit, fail, userCalls } = makeSut();
  fail(() => json(503, { message: 'Service Unavailable' }));
  const error = await t.throwsAsync(admit.execute('token alice'));
  t.is((error as UserCheckFailed).answer.status, 503);
  t.is((error as UserCheckFailed).answer.outcome, 'API_ERROR_MISS');
  fail(() => new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'slow'));
  const timeout = await t.throwsAsync(admit.execute('token alice'));
  // the mirror's own failure: a code, the status is the HTTP adapter's (test/adapters/http-server.test.ts)
  t.is((timeout as UserCheckFailed).answer.status, undefined);
  t.is((timeout as UserCheckFailed).answer.error?.code, ErrorCode.UPSTREAM_TIMEOUT);
  t.is((timeout as UserCheckFailed).answer.outcome, 'API_TIMEOUT_MISS');
  fail(() => json(403, { message: 'API rate limit exceeded for user ID 1.' }, { 'x-ratelimit-remaining': '0' }));
  const limited = await t.throwsAsync(admit.execute('token alice'));
  t.is((limited as UserCheckFailed).answer.status, 403);
  t.is((limited as UserCheckFailed).answer.outcome, 'RATE_LIMITED_MISS');
  fail(undefined);
  await t.notThrowsAsync(admit.execute('token alice'), 'asked again once GitHub answers');
  t.is(userCalls(), 4);
});

test('when GitHub is down, a cached /user answer for this very credential still admits', async (t) => {
  const { admit, fail, clock } = makeSut();
  await admit.execute('token bob');
  clock.advance(301_000);
  fail(() => new MirrorError(ErrorCode.UPSTREAM_OFFLINE, 'offline'));
  await t.notThrowsAsync(admit.execute('token bob'));
  const error = await t.throwsAsync(admit.execute('token alice'), undefined, 'nothing cached for alice');
  t.is((error as UserCheckFailed).answer.outcome, 'OFFLINE_MISS');
});

test('a 200 without a login is refused, not kept', async (t) => {
  const { admit, fail, userCalls } = makeSut();
  fail(() => json(200, ['not', 'a', 'user'], { etag: '"x"' }));
  const error = await t.throwsAsync(admit.execute('token alice'));
  t.true(isMirrorError(error, ErrorCode.FORBIDDEN_USER));
  fail(undefined);
  await admit.execute('token alice');
  t.is(userCalls(), 2);
});

test('verdicts are bounded in number', async (t) => {
  const { admit } = makeSut({ maxEntries: 5 });
  for (let i = 0; i < 20; i++) await t.throwsAsync(admit.execute(`token unknown-${i}`));
  t.is(admit.size, 5);
});
