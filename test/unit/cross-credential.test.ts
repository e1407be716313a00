/**
 * Cross-credential revalidation against the memory cache in the shared layout (the suite in
 * test/support/cross-credential-suite.ts; test/adapters/redis-cross-credential.test.ts runs it on Redis),
 * and GitHub's ETag formula of the domain against the one the fake GitHub applies.
 */
import anyTest, { type TestFn } from 'ava';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { nodeDigest } from '../../src/adapters/crypto/node-digest.adapter.js';
import { EMPTY_LIST_BODY, githubEtagFor, opaqueTag } from '../../src/domain/github-etag.js';
import { crossCredentialSuite, SECRET, type CrossCredentialContext } from '../support/cross-credential-suite.js';
import { githubEtag } from '../support/github-etag.js';

const test = anyTest as TestFn<CrossCredentialContext>;

test.beforeEach((t) => {
  t.context.makeCache = () => Promise.resolve(new MemoryCache({ maxBytes: 4 * 1024 * 1024, bodyKeys: new BodyKeys(SECRET) }));
});

crossCredentialSuite(test);

test('the domain’s ETag formula is the fake GitHub’s: Accept, Authorization, Cookie values, then the body', (t) => {
  const body = new TextEncoder().encode('{"a":1}');
  const headers = { accept: 'application/vnd.github+json', authorization: 'token x', cookie: 'c=1' };
  t.is(githubEtagFor(nodeDigest, headers, body), githubEtag(headers, body));
  t.is(githubEtagFor(nodeDigest, { authorization: 'token x' }, EMPTY_LIST_BODY), githubEtag({ authorization: 'token x' }, '[]'));
  t.is(githubEtagFor(nodeDigest, { accept: ['a', 'b'], authorization: 'token x' }, body), githubEtag({ accept: ['a', 'b'], authorization: 'token x' }, body), 'repeated headers: each value');
  t.is(githubEtagFor(nodeDigest, headers, body, 'Accept, Accept-Encoding'), githubEtag({ accept: headers.accept }, body), 'only what the answer varies on');
  t.is(githubEtagFor(nodeDigest, headers, body, '*'), githubEtag(headers, body));
  t.not(githubEtagFor(nodeDigest, { ...headers, authorization: 'token y' }, body), githubEtag(headers, body));
  t.is(opaqueTag(' W/"abc" '), '"abc"');
  t.is(opaqueTag('"abc"'), '"abc"');
});
