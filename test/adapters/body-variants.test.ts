/**
 * BodyVariants (the edge's rewritten and gzipped bodies, kept per source body): the same bytes as
 * rewriting every time, computed once from a body's second answer on, per public base, in buffers
 * of their own size, within the byte bound; and the per-request child logger made only when used.
 */
import test from 'ava';
import { gzipSync, gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { BodyVariants } from '../../src/adapters/http/body-variants.js';
import { UrlRewriter } from '../../src/adapters/http/url-rewriter.js';
import { lazyChildLogger } from '../../src/adapters/http/lazy-child-logger.js';

const UPSTREAM = 'https://api.github.com';
const body = (n: number) => Buffer.from(JSON.stringify({ n, url: `${UPSTREAM}/repos/o/r/${n}`, pad: 'x'.repeat(200) }));

/** A rewriter that counts its calls. */
function countingRewriter(): { rewriter: UrlRewriter; calls: () => number } {
  const rewriter = new UrlRewriter(UPSTREAM);
  let calls = 0;
  const rewriteBody = rewriter.rewriteBody.bind(rewriter);
  rewriter.rewriteBody = (b, base) => {
    calls++;
    return rewriteBody(b, base);
  };
  return { rewriter, calls: () => calls };
}

test('a body served again is rewritten once per public base, with the bytes rewriting gives', (t) => {
  const variants = new BodyVariants(1024 * 1024);
  const { rewriter, calls } = countingRewriter();
  const source = body(1);
  const expected = new UrlRewriter(UPSTREAM).rewriteBody(Buffer.from(source), 'http://m:1');
  for (let i = 0; i < 5; i++) t.deepEqual(variants.served(source, 'http://m:1', rewriter), expected);
  t.is(calls(), 2, 'first answer rewritten and not kept, second rewritten and kept, then served as kept');
  t.true(variants.served(source, 'http://m:1/api/v3', rewriter).toString().includes('http://m:1/api/v3/repos/o/r/1'));
  t.is(calls(), 3, 'another public base, another form');
  t.deepEqual(Buffer.from(source), body(1), 'the source is never changed');
});

test('bodies served once are not kept; kept forms are buffers of their own size', (t) => {
  const variants = new BodyVariants(1024 * 1024);
  const { rewriter } = countingRewriter();
  for (let n = 0; n < 50; n++) variants.served(body(n), 'http://m', rewriter);
  t.is(variants.size, 0);
  const source = body(99);
  variants.served(source, 'http://m', rewriter);
  const kept = variants.served(source, 'http://m', rewriter);
  t.is(kept.byteOffset, 0);
  t.is(kept.buffer.byteLength, kept.byteLength, 'not a view of a pool slab');
  t.is(variants.size, source.byteLength + kept.byteLength);
});

test('without a rewriter the source is served as it is, and gzip is computed once', async (t) => {
  const variants = new BodyVariants(1024 * 1024);
  const source = body(7);
  let compressions = 0;
  const compress = (b: Buffer) => {
    compressions++;
    return Promise.resolve(gzipSync(b));
  };
  for (let i = 0; i < 4; i++) {
    const served = variants.served(source, 'http://m', undefined);
    t.deepEqual(served, Buffer.from(source));
    t.deepEqual(gunzipSync(await variants.gzipped(source, 'http://m', served, compress)), Buffer.from(source));
  }
  t.is(compressions, 2, 'the first answer (not kept) and the second (kept)');
});

test('the byte bound evicts the least recently served bodies', (t) => {
  const one = body(0).byteLength * 2; // a source and its rewritten form
  const variants = new BodyVariants(one * 3);
  const { rewriter, calls } = countingRewriter();
  const sources = [body(0), body(1), body(2), body(3)];
  for (const s of sources) {
    variants.served(s, 'http://m', rewriter);
    variants.served(s, 'http://m', rewriter);
  }
  t.true(variants.size <= one * 3);
  const before = calls();
  variants.served(sources[3]!, 'http://m', rewriter);
  t.is(calls(), before, 'the most recent body is still kept');
  variants.served(sources[0]!, 'http://m', rewriter);
  t.is(calls(), before + 1, 'the oldest was evicted');
});

test('the per-request child logger is made on first use and writes the bindings', (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const parent = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  let children = 0;
  const child = parent.child.bind(parent);
  parent.child = ((...args: Parameters<typeof child>) => {
    children++;
    return child(...args);
  }) as typeof parent.child;
  const log = lazyChildLogger(parent, { reqId: 'req-7' }, {});
  t.is(log.level, 'info');
  t.is(children, 0);
  log.debug('not written');
  t.is(children, 0, 'a call at a level that is off makes no child');
  log.info({ a: 1 }, 'written');
  log.error('also written');
  t.is(children, 1);
  t.deepEqual(
    lines.map((l) => [l['reqId'], l['msg'], l['level']]),
    [
      ['req-7', 'written', 30],
      ['req-7', 'also written', 50],
    ],
  );
  t.is(lines[0]?.['a'], 1);
});
