/**
 * `npm run bench:alloc`: what each piece of a revalidation allocates on the JavaScript heap, per
 * call, measured in one process from V8's GC records (gc-ledger.ts) — figures that hardly move with
 * the machine's load, unlike CPU time. A mirror is built from the production defaults (memory cache,
 * governor and breaker on, access log off: it is the edge's, not measured here) against the bench's
 * fake GitHub, in this process too; so every row includes the fake's own allocation for the one
 * upstream call it makes, and the rows compare with each other, not with zero:
 *
 * - `bare undici`: `pool.request()` with If-None-Match, body read — the floor cache's upstream call;
 * - `upstream chain`: the mirror's UpstreamPort (governor → breaker → undici adapter), a 304;
 * - `keys + lookup`: cache key, seal key, resource key, the memory cache's lookup (no upstream call);
 * - `resolveResource`: the whole GET flow of a revalidation (lookup, upstream call, events);
 * - `HTTP …`: whole requests through a server listening in this process, sent by the bench's load
 *   generator (bench/load.ts) on keep-alive sockets — the floor cache (bench/floor-cache.ts) beside
 *   a mirror with its access log on (info, to a buffered /dev/null as production's stdout), for a
 *   fresh hit (freshness window, one token, no upstream call) and a revalidation (256 tokens): what
 *   the mirror allocates beyond a minimal cache for the same answer. These rows include the load
 *   generator's allocation too, alike in each pair.
 *
 * 256 tokens in turn, 4 calls at a time, 20,000 calls per row after 8,000 of warm-up. Prints KB per call.
 * Arguments MIRROR_X=value change the mirror's settings (`npm run bench:alloc -- MIRROR_UPSTREAM_BREAKER_ENABLED=false`).
 */
import { openSync } from 'node:fs';
import { Pool } from 'undici';
import { runLoad } from './load.js';
import { startFloorCache } from './floor-cache.js';
import { BufferedStdout, createLogger } from '../src/app/logger.js';
import { GcLedger } from './gc-ledger.js';
import { startBenchUpstream } from './upstream.js';
import { BENCH_ACCEPT, BENCH_RESOURCE, distinctTokens } from './scenario.js';
import { loadConfig } from '../src/app/config/index.js';
import { Mirror } from '../src/app/mirror.js';
import { TOKENS } from '../src/app/tokens.js';
import type { ResolveResource } from '../src/domain/use-cases/resolve-resource.js';
import type { UpstreamWiring } from '../src/app/wiring/upstream.js';
import type { CachePort } from '../src/domain/ports/cache.port.js';
import type { KeyHasherPort } from '../src/domain/ports/key-hasher.port.js';

/** The MIRROR_X=value arguments: settings of every mirror this builds. */
const SETTINGS: Record<string, string> = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((item) => /^MIRROR_\w+=/.test(item))
    .map((item) => [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)]),
);

const CALLS = 20_000;
const WARM_UP = 8_000;
const AT_ONCE = 4;

async function perCall(label: string, call: (i: number) => Promise<unknown>): Promise<void> {
  const batch = (from: number) => Promise.all(Array.from({ length: AT_ONCE }, (_, k) => call(from + k)));
  for (let i = 0; i < WARM_UP; i += AT_ONCE) await batch(i);
  const ledger = new GcLedger();
  for (let i = 0; i < CALLS; i += AT_ONCE) await batch(i);
  const { allocatedBytes } = ledger.read();
  console.log(`| ${label} | ${(allocatedBytes / 1024 / CALLS).toFixed(2)} |`);
}

/** The settings of every mirror built here: production defaults but snapshots off and the governor's budget above the load, then `extra`, then the command line's. */
function mirrorEnv(upstreamUrl: string, extra: Record<string, string>): Record<string, string> {
  return {
    MIRROR_UPSTREAM_URL: upstreamUrl,
    MIRROR_CACHE_SECRET: 'bench-alloc-secret-'.padEnd(40, 'x'),
    MIRROR_SNAPSHOT_STORE: 'none',
    MIRROR_UPSTREAM_GOVERNOR_POINTS_PER_MINUTE: '100000000',
    MIRROR_PORT: '0',
    MIRROR_HOST: '127.0.0.1',
    ...extra,
    ...SETTINGS,
  };
}

/** Heap KB per whole HTTP request to `url` (after a warm-up), sent 4 at a time over keep-alive sockets. */
async function perHttpRequest(label: string, url: string, load: { headers: Record<string, string>; variants?: Array<{ headers: Record<string, string> }> }): Promise<void> {
  await runLoad({ url, connections: AT_ONCE, durationMs: 600_000, maxRequests: WARM_UP, ...load });
  const ledger = new GcLedger();
  const result = await runLoad({ url, connections: AT_ONCE, durationMs: 600_000, maxRequests: CALLS, ...load });
  const { allocatedBytes } = ledger.read();
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${label}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  console.log(`| ${label} | ${(allocatedBytes / 1024 / Math.max(1, result.requests)).toFixed(2)} |`);
}

/** A mirror as bench/server.ts starts one (production defaults, access log at info), in this process, its log to /dev/null. */
async function httpMirror(upstreamUrl: string, extra: Record<string, string>): Promise<Mirror> {
  const mirror = new Mirror(loadConfig({ env: mirrorEnv(upstreamUrl, extra), args: [] }), { logger: createLogger('info', new BufferedStdout(openSync('/dev/null', 'w'))) });
  await mirror.start();
  return mirror;
}

async function main(): Promise<void> {
  const upstream = await startBenchUpstream();
  process.env['NODE_ENV'] = 'production';
  const mirror = new Mirror(loadConfig({ env: mirrorEnv(upstream.url, { MIRROR_LOG_LEVEL: 'warn' }), args: [] }));
  await mirror.start();
  try {
    const resolve = mirror.container.resolve<ResolveResource>(TOKENS.ResolveResource);
    const chain = mirror.container.resolve<UpstreamWiring>(TOKENS.Upstream).port;
    const cache = mirror.container.resolve<CachePort>(TOKENS.Cache);
    const keys = mirror.container.resolve<KeyHasherPort>(TOKENS.KeyHasher);
    const tokens = distinctTokens(256);
    const token = (i: number) => tokens[i % tokens.length] as string;
    const q = BENCH_RESOURCE.indexOf('?');
    const path = q === -1 ? BENCH_RESOURCE : BENCH_RESOURCE.slice(0, q);
    const query = q === -1 ? '' : BENCH_RESOURCE.slice(q + 1);
    const request = (i: number) => ({
      method: 'GET' as const,
      target: BENCH_RESOURCE,
      path,
      query,
      headers: { accept: BENCH_ACCEPT, authorization: token(i), 'user-agent': 'bench-alloc/1' },
      credential: token(i),
    });
    for (let i = 0; i < tokens.length; i++) await resolve.execute(request(i));

    console.log('| piece | heap KB per call |');
    console.log('| --- | ---: |');
    const pool = new Pool(upstream.url, { connections: 16 });
    const floorEtags = new Map<string, string>();
    await perCall('bare undici: pool.request() + body (the floor upstream call)', async (i) => {
      const headers: Record<string, string> = { accept: BENCH_ACCEPT, authorization: token(i) };
      const etag = floorEtags.get(token(i));
      if (etag !== undefined) headers['if-none-match'] = etag;
      const answer = await pool.request({ path: BENCH_RESOURCE, method: 'GET', headers });
      await answer.body.arrayBuffer();
      if (typeof answer.headers.etag === 'string') floorEtags.set(token(i), answer.headers.etag);
    });
    await pool.close();
    const chainEtags = new Map<string, string>();
    await perCall('upstream chain: governor → breaker → undici adapter', async (i) => {
      const headers: Record<string, string> = { accept: BENCH_ACCEPT, authorization: token(i) };
      const etag = chainEtags.get(token(i));
      if (etag !== undefined) headers['if-none-match'] = etag;
      const answer = await chain.fetch({ method: 'GET', target: BENCH_RESOURCE, headers });
      const got = answer.headers['etag'];
      if (typeof got === 'string') chainEtags.set(token(i), got);
    });
    await perCall('keys + memory lookup (no upstream call)', async (i) => {
      // one object for both keys, as ResolveResource.execute builds it (the resource key ignores the credential)
      const parts = { credential: token(i), method: 'GET', path, query, accept: BENCH_ACCEPT, apiVersion: '' };
      await cache.lookup(keys.keyFor(parts), keys.sealKeyFor(token(i)), keys.resourceKeyFor(parts));
    });
    await perCall('resolveResource: a whole revalidation (GET flow)', (i) => resolve.execute(request(i)));

    const one = { headers: { accept: BENCH_ACCEPT, authorization: token(0) } };
    const distinct = { headers: { accept: BENCH_ACCEPT }, variants: tokens.map((authorization) => ({ headers: { authorization } })) };
    const closers: Array<() => Promise<void>> = [];
    const started = async <T extends { url: string }>(server: Promise<T>, close: (s: T) => Promise<void>): Promise<string> => {
      const s = await server;
      closers.push(() => close(s));
      return s.url + BENCH_RESOURCE;
    };
    try {
      await perHttpRequest('HTTP fresh hit: floor cache replaying its 200', await started(startFloorCache(upstream.url, 0, 600_000), (s) => s.close()), one);
      await perHttpRequest('HTTP fresh hit: mirror (freshness window, access log on)', await started(httpMirror(upstream.url, { MIRROR_CACHE_FRESHNESS_MS: '600000' }), (m) => m.stop()), one);
      await perHttpRequest('HTTP revalidation: floor cache', await started(startFloorCache(upstream.url), (s) => s.close()), distinct);
      await perHttpRequest('HTTP revalidation: mirror (access log on)', await started(httpMirror(upstream.url, {}), (m) => m.stop()), distinct);
    } finally {
      await Promise.all(closers.map((close) => close()));
    }
  } finally {
    await mirror.stop();
    await upstream.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:alloc failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
