import test from 'ava';
import { HmacKeyHasher } from '../../src/adapters/crypto/hmac-key-hasher.adapter.js';

const parts = (credential: string | undefined, path = '/repos/o/r') => ({ credential, method: 'GET', path, query: 'a=1', accept: '', apiVersion: '' });

test('keys never contain the credential and differ per credential, secret and request part', (t) => {
  const hasher = new HmacKeyHasher('secret-1');
  const key = hasher.keyFor(parts('token ghp_abcdef123456'));
  t.false(key.includes('ghp_abcdef123456'));
  t.regex(key, /^[0-9a-f]{32}:[0-9a-f]{40}$/);
  t.not(key, hasher.keyFor(parts('token other')));
  t.not(key, new HmacKeyHasher('secret-2').keyFor(parts('token ghp_abcdef123456')));
  t.not(key, hasher.keyFor(parts('token ghp_abcdef123456', '/repos/o/s')));
  t.is(key, hasher.keyFor(parts('token ghp_abcdef123456')), 'stable');
  t.true(hasher.keyFor(parts(undefined)).startsWith('anon:'));
});

test('seal keys are 32 bytes, per credential, and need the credential', (t) => {
  const hasher = new HmacKeyHasher('secret-1');
  const a = hasher.sealKeyFor('token a');
  t.is(a.byteLength, 32);
  t.notDeepEqual(Buffer.from(a), Buffer.from(hasher.sealKeyFor('token b')));
  t.notDeepEqual(Buffer.from(a), Buffer.from(new HmacKeyHasher('secret-2').sealKeyFor('token a')));
  t.notDeepEqual(Buffer.from(a), Buffer.from(hasher.sealKeyFor(undefined)));
  t.deepEqual(Buffer.from(a), Buffer.from(new HmacKeyHasher('secret-1').sealKeyFor('token a')));
});

test('resource keys are the same for every credential, differ per request part and secret, and hold no brace', (t) => {
  const hasher = new HmacKeyHasher('secret-1');
  const { credential: _credential, ...request } = parts('token a');
  const key = hasher.resourceKeyFor(request);
  t.regex(key, /^[0-9a-f]{40}$/);
  t.is(key, hasher.resourceKeyFor({ ...request }), 'stable');
  t.not(key, hasher.resourceKeyFor({ ...request, path: '/repos/o/s' }));
  t.not(key, hasher.resourceKeyFor({ ...request, query: 'a=2' }));
  t.not(key, hasher.resourceKeyFor({ ...request, accept: 'application/vnd.github.raw' }));
  t.not(key, hasher.resourceKeyFor({ ...request, apiVersion: '2026-03-10' }));
  t.not(key, new HmacKeyHasher('secret-2').resourceKeyFor(request));
  t.false(hasher.keyFor(parts('token a')).includes(key), 'not a part of any credential key');
});

test('keys are memoised per request identity: the same key from a fresh hasher, and after the memo fills and empties', (t) => {
  const hasher = new HmacKeyHasher('secret-1');
  const first = hasher.keyFor(parts('token a'));
  for (let i = 0; i < 10_050; i++) hasher.keyFor(parts('token a', `/repos/o/r${i}`));
  t.is(hasher.keyFor(parts('token a')), first);
  t.is(new HmacKeyHasher('secret-1').keyFor(parts('token a')), first);
  t.not(hasher.keyFor({ ...parts('token a'), query: 'a=1\u0000' }), first, 'a part cannot spill into the next one');
});
