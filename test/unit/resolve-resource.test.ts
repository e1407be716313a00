import anyTest, { type TestFn } from 'ava';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { useCaseSuite, type SuiteContext } from '../support/use-case-suite.js';

const test = anyTest as TestFn<SuiteContext>;

test.beforeEach((t) => {
  t.context.makeCache = () => Promise.resolve(new MemoryCache({ maxBytes: 1024 * 1024 }));
});

useCaseSuite(test);
