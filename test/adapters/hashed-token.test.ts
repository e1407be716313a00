/**
 * hashed_token: base64(SHA-256(token)) of the credential without its scheme, as GitHub's audit log
 * names a token; memoised per credential, bounded.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { HashedTokens, hashToken } from '../../src/adapters/crypto/hashed-token.js';

test('the audit-log form: base64 of the SHA-256 of the token alone', (t) => {
  const token = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
  const expected = createHash('sha256').update(token).digest('base64');
  t.is(hashToken(token), expected);
  t.regex(expected, /^[A-Za-z0-9+/]{43}=$/);
  const tokens = new HashedTokens();
  t.is(tokens.of(`token ${token}`), expected);
  t.is(tokens.of(`Bearer ${token}`), expected);
  t.is(tokens.of(`bearer  ${token}`), expected);
  t.is(tokens.of(`TOKEN ${token}`), expected);
  t.not(tokens.of(`token ${token}x`), expected);
});

test('no hashed_token without a token credential', (t) => {
  const tokens = new HashedTokens();
  t.is(tokens.of(undefined), undefined);
  t.is(tokens.of(''), undefined);
  t.is(tokens.of('Basic dXNlcjpwYXNz'), undefined);
  t.is(tokens.of('token'), undefined);
  t.is(tokens.of('token a b'), undefined);
  t.is(tokens.of('ghp_bare_without_scheme'), undefined);
});

test('memoised per credential and bounded: the oldest is forgotten, and hashed again the same way', (t) => {
  const tokens = new HashedTokens(3);
  const first = tokens.of('token one');
  for (const name of ['two', 'three', 'four', 'five']) tokens.of(`token ${name}`);
  t.is(tokens.size, 3);
  t.is(tokens.of('token one'), first);
  t.is(tokens.size, 3);
  t.is(first, hashToken('one'));
});
