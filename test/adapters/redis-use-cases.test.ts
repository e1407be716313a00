/**
 * The shared use-case suite (test/support/use-case-suite.ts) against a real Redis: the domain behaves
 * the same whatever holds the entries.
 */
import anyTest, { type TestFn } from 'ava';
import { cachesOnRealRedis } from '../support/redis-suite.js';
import { useCaseSuite, type SuiteContext } from '../support/use-case-suite.js';

const test = anyTest as TestFn<SuiteContext>;

cachesOnRealRedis(test, 'suite');
useCaseSuite(test);
