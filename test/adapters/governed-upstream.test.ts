/**
 * GovernedUpstream (it absorbed SecondaryLimitGate; these were its tests): after a 429 (or a 403 with
 * Retry-After / naming a secondary limit) a credential's requests stay away from GitHub until the wait
 * is over; the synthetic 429 carries the Retry-After left. Then what the governor adds: turns given back
 * when a call is over, points given back when it never left, GOVERNOR_WAIT_EXCEEDED after maxWaitMs.
 */
import test from 'ava';
import { Readable } from 'node:stream';
import { GovernedUpstream, parseRetryAfter } from '../../src/adapters/github/governed-upstream.adapter.js';
import { MemoryGovernor } from '../../src/adapters/governor/memory-governor.adapter.js';
import type { UpstreamRequest } from '../../src/domain/ports/upstream.port.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { ErrorCode, GovernorWaitExceeded, MirrorError } from '../../src/domain/errors.js';
import { FakeClock, ScriptedUpstream, json, dec } from '../support/fakes.js';

const get = (authorization?: string, target = '/r'): UpstreamRequest => ({
  method: 'GET',
  target,
  headers: authorization === undefined ? {} : { authorization },
});


const LIMITS = { enabled: true, maxConcurrent: 50, pointsPerMinute: 800, writeSpacingMs: 1000, maxWaitMs: 10_000 };

function makeSut(respond: ConstructorParameters<typeof ScriptedUpstream>[0], maxCredentials?: number, limits: Partial<typeof LIMITS> = {}) {
  const clock = new FakeClock();
  const upstream = new ScriptedUpstream(respond);
  const governor = new MemoryGovernor({ ...LIMITS, ...limits, clock, ...(maxCredentials === undefined ? {} : { maxCredentials }) });
  const gate = new GovernedUpstream(upstream, new HmacKeyHasher('test-secret'), clock, governor);
  return { clock, upstream, gate, governor };
}

const secondary429 = (seconds: number) =>
  json(429, { message: 'You have exceeded a secondary rate limit.' }, { 'retry-after': String(seconds) });

test('a 429 with Retry-After holds that credential, and only it, until the wait is over', async (t) => {
  let limited = true;
  const { gate, upstream, clock, governor } = makeSut((r) => (limited && r.headers['authorization'] === 'token a' ? secondary429(30) : json(200, { ok: true })));
  t.is((await gate.fetch(get('token a'))).status, 429);
  limited = false;
  clock.advance(10_000);
  const held = await gate.fetch(get('token a', '/other'));
  t.is(held.status, 429);
  t.is(held.headers['retry-after'], '20');
  t.is(JSON.parse(dec(held.body)).code, 'SECONDARY_RATE_LIMITED');
  t.is(upstream.requests.length, 1, 'the held request never reached upstream');
  t.is((await gate.fetch(get('token b'))).status, 200, 'another credential is not held');
  t.is((await gate.fetch(get())).status, 200, 'nor anonymous requests');
  clock.advance(19_500);
  t.is((await gate.fetch(get('token a'))).headers['retry-after'], '1');
  clock.advance(500);
  t.is((await gate.fetch(get('token a'))).status, 200, 'released when Retry-After has passed');
  t.is(governor.store.heldCount, 0);
});

test('pass-through requests are held too, with a streamed 429 body', async (t) => {
  const { gate, upstream } = makeSut(() => secondary429(60));
  await gate.forward({ method: 'POST', target: '/repos/o/r/issues', headers: { authorization: 'token a' } });
  const held = await gate.forward({ method: 'POST', target: '/repos/o/r/issues', headers: { authorization: 'token a' } });
  t.is(held.status, 429);
  t.is(held.headers['retry-after'], '60');
  const chunks: Uint8Array[] = [];
  for await (const chunk of held.body) chunks.push(chunk);
  t.is(JSON.parse(Buffer.concat(chunks).toString()).code, 'SECONDARY_RATE_LIMITED');
  t.is(upstream.requests.length, 1);
});

test('which answers hold: 403 with Retry-After or naming a secondary limit, 429 without Retry-After (60 s); not a primary 403', async (t) => {
  const answers = new Map([
    ['token retry403', json(403, { message: 'x' }, { 'retry-after': '5' })],
    ['token named403', json(403, { message: 'You have exceeded a secondary rate limit. Please wait.' })],
    ['token bare429', json(429, { message: 'Too Many Requests' })],
    ['token primary403', json(403, { message: 'API rate limit exceeded for user ID 1.' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700003600' })],
    ['token notfound', json(404, { message: 'Not Found' })],
  ]);
  const { gate, upstream } = makeSut((r) => answers.get(r.headers['authorization'] as string) ?? json(200, {}));
  for (const credential of answers.keys()) await gate.fetch(get(credential));
  const second = new Map<string, string | undefined>();
  for (const credential of answers.keys()) {
    const answer = await gate.fetch(get(credential));
    second.set(credential, answer.status === 429 && answer.headers['content-type'] !== undefined ? (answer.headers['retry-after'] as string) : undefined);
  }
  t.is(second.get('token retry403'), '5');
  t.is(second.get('token named403'), '60');
  t.is(second.get('token bare429'), '60');
  t.is(upstream.requests.filter((r) => r.headers['authorization'] === 'token primary403').length, 2, 'a primary limit is not held (its own reset applies)');
  t.is(upstream.requests.filter((r) => r.headers['authorization'] === 'token notfound').length, 2);
});

test('an HTTP-date Retry-After is honoured; absurd waits are capped at an hour', async (t) => {
  const { gate, clock } = makeSut((r) =>
    r.headers['authorization'] === 'token date'
      ? json(429, {}, { 'retry-after': new Date(clock.now() + 90_000).toUTCString() })
      : json(429, {}, { 'retry-after': '999999' }),
  );
  await gate.fetch(get('token date'));
  const held = Number((await gate.fetch(get('token date'))).headers['retry-after']);
  t.true(held >= 89 && held <= 90, String(held));
  await gate.fetch(get('token huge'));
  t.is((await gate.fetch(get('token huge'))).headers['retry-after'], '3600');
  t.is(parseRetryAfter('soon', 0), undefined);
  t.is(parseRetryAfter(' 7 ', 0), 7000);
});

test('the map of holds is bounded; keys are credential hashes, never the Authorization value', async (t) => {
  const { gate, governor } = makeSut(() => secondary429(60), 3);
  for (let i = 0; i < 10; i++) await gate.fetch(get(`token secret-${i}`));
  t.is(governor.store.heldCount, 3);
  const holds = governor.store.holds;
  for (const key of holds.keys()) t.false(key.includes('secret'), key);
  t.is((await gate.fetch(get('token secret-9'))).headers['retry-after'], '60', 'the newest holds are kept');
});

// ---- what the governor adds ----------------------------------------------------------------------

/** An upstream whose answers wait until the test lets them go. */
function gatedUpstream() {
  const pending: Array<() => void> = [];
  const upstream = new ScriptedUpstream(
    () =>
      new Promise((resolve) => {
        pending.push(() => resolve(json(200, { ok: true })));
      }),
  );
  return { upstream, pending };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a call over budget waits for a turn, and is refused with GOVERNOR_WAIT_EXCEEDED after maxWaitMs', async (t) => {
  const clock = new FakeClock();
  const { upstream, pending } = gatedUpstream();
  const governor = new MemoryGovernor({ ...LIMITS, maxConcurrent: 1, maxWaitMs: 1000, clock });
  const gate = new GovernedUpstream(upstream, new HmacKeyHasher('test-secret'), clock, governor);
  const first = gate.fetch(get('token a', '/1'));
  await settle();
  const second = gate.fetch(get('token a', '/2'));
  const other = gate.fetch(get('token b', '/3'));
  await settle();
  t.is(upstream.requests.length, 2, 'the second call of token a waits; token b goes');
  pending.splice(0).forEach((go) => go());
  t.is((await first).status, 200);
  t.is((await other).status, 200);
  await clock.run(10, 1);
  t.is(upstream.requests.length, 3, 'the slot came back: the waiting call goes at once');
  pending.splice(0).forEach((go) => go());
  t.is((await second).status, 200);

  const busy = gate.fetch(get('token a', '/4'));
  await settle();
  const refused = gate.fetch(get('token a', '/5'));
  await clock.run(1000, 50);
  const error = await t.throwsAsync(refused, { instanceOf: GovernorWaitExceeded });
  t.is(error?.code, ErrorCode.GOVERNOR_WAIT_EXCEEDED);
  t.true((error?.retryAfterSeconds ?? 0) >= 1);
  t.false(error?.message.includes('token a'));
  t.is(upstream.requests.length, 4, 'the refused call never left');
  pending.splice(0).forEach((go) => go());
  t.is((await busy).status, 200);
  t.is(governor.store.inFlight(new HmacKeyHasher('test-secret').partitionOf('token a')), 0, 'every slot given back');
});

test('a call that failed gives its slot back; one that never left (breaker open) gives its points back too', async (t) => {
  const offline = new MirrorError(ErrorCode.UPSTREAM_OFFLINE, 'offline');
  let answer: 'offline' | 'timeout' | 'ok' = 'offline';
  const { gate, upstream, governor } = makeSut(
    () => (answer === 'offline' ? offline : answer === 'timeout' ? new MirrorError(ErrorCode.UPSTREAM_TIMEOUT, 'slow') : json(200, {})),
    undefined,
    { maxConcurrent: 1, pointsPerMinute: 2, maxWaitMs: 0 },
  );
  for (let i = 0; i < 5; i++) await t.throwsAsync(gate.fetch(get('token a')), { is: offline });
  answer = 'timeout';
  await t.throwsAsync(gate.fetch(get('token a')), { message: 'slow' });
  answer = 'ok';
  t.is((await gate.fetch(get('token a'))).status, 200, 'offline calls cost nothing; the timeout cost 1 of 2 points');
  await t.throwsAsync(gate.fetch(get('token a')), { instanceOf: GovernorWaitExceeded }, 'the budget of 2 is spent');
  t.is(upstream.requests.length, 7);
  t.is(governor.store.inFlight(new HmacKeyHasher('test-secret').partitionOf('token a')), 0);
});

test('a streamed answer keeps its slot until its body has closed', async (t) => {
  const clock = new FakeClock();
  const body = new Readable({ read() {} });
  const upstream = new ScriptedUpstream(() => json(201, {}));
  upstream.forward = (request) => {
    upstream.requests.push(request);
    return Promise.resolve({ status: 201, headers: {}, body });
  };
  const governor = new MemoryGovernor({ ...LIMITS, maxConcurrent: 1, writeSpacingMs: 0, clock });
  const gate = new GovernedUpstream(upstream, new HmacKeyHasher('test-secret'), clock, governor);
  const partition = new HmacKeyHasher('test-secret').partitionOf('token a');
  const post = { method: 'POST', target: '/repos/o/r/issues', headers: { authorization: 'token a' } };
  const answer = await gate.forward(post);
  t.is(answer.status, 201);
  t.is(governor.store.inFlight(partition), 1, 'the body is still streaming');
  body.push('x');
  body.push(null);
  for await (const chunk of answer.body) t.truthy(chunk);
  await settle();
  t.is(governor.store.inFlight(partition), 0);
});

test('a 429 without Retry-After but with x-ratelimit-remaining 0 is held until x-ratelimit-reset', async (t) => {
  const { gate, clock, upstream } = makeSut(() =>
    json(429, { message: 'slow down' }, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(clock.now() / 1000) + 120) }),
  );
  await gate.fetch(get('token a'));
  t.is((await gate.fetch(get('token a'))).headers['retry-after'], '120');
  t.is(upstream.requests.length, 1);
});
