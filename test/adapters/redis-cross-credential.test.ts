/**
 * The cross-credential suite (test/support/cross-credential-suite.ts) against a real Redis in the shared
 * layout: the domain behaves the same whatever holds the bodies.
 */
import anyTest, { type TestFn } from 'ava';
import { BodyKeys } from '../../src/adapters/crypto/body-keys.js';
import { cachesOnRealRedis } from '../support/redis-suite.js';
import { crossCredentialSuite, SECRET, type CrossCredentialContext } from '../support/cross-credential-suite.js';

const test = anyTest as TestFn<CrossCredentialContext>;

cachesOnRealRedis(test, 'cross', { bodyKeys: new BodyKeys(SECRET) });
crossCredentialSuite(test);
