/**
 * SecondaryLimitGate: after a 429 (or a 403 with Retry-After / naming a secondary limit) a credential's
 * requests stay away from GitHub until the wait is over; the synthetic 429 carries the Retry-After left.
 */
import test from 'ava';
import { SecondaryLimitGate, parseRetryAfter } from '../../src/adapters/github/secondary-limit-gate.adapter.js';
import type { UpstreamRequest } from '../../src/domain/ports/upstream.port.js';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';
import { FakeClock, ScriptedUpstream, json, dec } from '../support/fakes.js';

const get = (authorization?: string, target = '/r'): UpstreamRequest => ({
  method: 'GET',
  target,
  headers: authorization === undefined ? {} : { authorization },
});


function makeSut(respond: ConstructorParameters<typeof ScriptedUpstream>[0], maxCredentials?: number) {
  const clock = new FakeClock();
  const upstream = new ScriptedUpstream(respond);
  const gate = new SecondaryLimitGate(upstream, new HmacKeyHasher('test-secret'), clock, maxCredentials === undefined ? {} : { maxCredentials });
  return { clock, upstream, gate };
}

const secondary429 = (seconds: number) =>
  json(429, { message: 'You have exceeded a secondary rate limit.' }, { 'retry-after': String(seconds) });

test('a 429 with Retry-After holds that credential, and only it, until the wait is over', async (t) => {
  let limited = true;
  const { gate, upstream, clock } = makeSut((r) => (limited && r.headers['authorization'] === 'token a' ? secondary429(30) : json(200, { ok: true })));
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
  t.is(gate.heldCount, 0);
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
  const { gate } = makeSut(() => secondary429(60), 3);
  for (let i = 0; i < 10; i++) await gate.fetch(get(`token secret-${i}`));
  t.is(gate.heldCount, 3);
  const holds = (gate as unknown as { holds: Map<string, number> }).holds;
  for (const key of holds.keys()) t.false(key.includes('secret'), key);
  t.is((await gate.fetch(get('token secret-9'))).headers['retry-after'], '60', 'the newest holds are kept');
});
