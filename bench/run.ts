/**
 * `npm run bench`: measures, in one run on this machine, the fake upstream alone, a bare undici
 * proxy, the minimal revalidating cache (bench/floor-cache.ts, the floor of issue 13) and the mirror
 * under the same loads, then prints a table, the goal ratios, and writes bench/results/bench.json.
 *
 *   npm run bench -- [--rounds 12] [--duration 1] [--connections 10] [--only a,b] [--generator raw|autocannon]
 *                    [--tokens 256] [--freshness-ms 60000] [--mem-max-bytes 268435456] [--log-file /dev/null]
 *                    [--runtime compiled|tsx] [--cpu-prof DIR] [--variant NAME:MIRROR_X=v,MIRROR_Y=w,--node-flag ...]
 *
 * Loads: "hit" = one token, one resource from every connection (a mirror coalesces concurrent
 * identical requests, so few reach upstream); "distinct" = `--tokens` Authorization values taken in
 * turn, one per request, so nothing coalesces and every request is a revalidation (upstream/req ≈ 1).
 * Every row carries the server process's own CPU µs per request over the measured window and the
 * upstream calls per client request (asked from the servers over IPC before and after the window),
 * and the heap its JavaScript allocated per request. `floor-cache-fresh` (the floor replaying its
 * stored 200 within the freshness window) puts the fresh-hit goal to scale (printed after the goals).
 *
 * Every scenario runs once per round (servers stay up), in short windows, the order turning by one
 * each round, so a slow stretch of this noisy machine falls on every scenario alike; a row's CPU and
 * upstream figures are its totals over the rounds divided by its requests, its req/s and latencies
 * the medians of its rounds. The goal ratios are printed with their spread over the rounds. After the
 * rounds, `memory-filled` fills a mirror's memory cache to `--mem-max-bytes` and checks its RSS.
 *
 * `--variant NAME:MIRROR_X=v,…` (repeatable) adds a row `mirror-memory-revalidate-distinct+NAME`: the
 * same load on a mirror with those settings changed — what a piece costs, measured in the same run
 * (e.g. `--variant nolog:MIRROR_LOG_LEVEL=warn`).
 *
 * `--cpu-prof DIR` runs every server but the upstream under `node --cpu-prof`: each writes
 * DIR/<server>.cpuprofile when the runner stops it (warm-up included; a floor's or a mirror's server
 * is named after its scenario, the bare proxy's `proxy`), so a mirror's profile can be read beside
 * its floor's.
 *
 * A run with `--only` writes bench/results/bench-only.json, so it never replaces a full run's results.
 *
 * The default generator (bench/load.ts) keeps latencies in microseconds; `--generator autocannon`
 * runs the same scenarios with autocannon as a cross-check of the throughput figures (its latencies
 * are coarser) and writes bench/results/bench-autocannon.json instead.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';
import { measureCacheOps } from './cache-ops.js';
import { measureGovernorOps } from './governor-ops.js';
import { measureMemoryFill } from './memory-fill.js';
import { ServerFleet, type BenchServer } from './servers.js';
import { printGoals, printTable, upstreamMisses, upstreamWarnings, type RoundFigures, type Row, type UpstreamExpectation } from './report.js';
import { startRedis, freePort, type RedisProcess } from '../test/support/redis-harness.js';
import { arg, median, variantsOf } from './cli-args.js';
import { BENCH_ACCEPT, BENCH_RESOURCE, BENCH_TOKEN, DISTINCT_TOKENS, distinctTokens } from './scenario.js';

const here = dirname(fileURLToPath(import.meta.url));


const duration = Number(arg('duration', '1'));
const connections = Number(arg('connections', '10'));
const only = arg('only', '').split(',').filter(Boolean);
const rounds = Math.max(1, Number(arg('rounds', '12')));
const generator = arg('generator', 'raw');
const tokenCount = Math.max(DISTINCT_TOKENS, Number(arg('tokens', String(DISTINCT_TOKENS))));
const freshnessMs = Number(arg('freshness-ms', '60000'));
const memMaxBytes = Number(arg('mem-max-bytes', String(256 * 1024 * 1024)));
const logFile = arg('log-file', '/dev/null');
const runtime = arg('runtime', 'compiled');
const cpuProfDir = arg('cpu-prof', '');
const variants = variantsOf();
if (runtime !== 'compiled' && runtime !== 'tsx') {
  process.stderr.write(`bench: --runtime must be compiled or tsx, not ${runtime}\n`);
  process.exit(2);
}
if (generator !== 'raw' && generator !== 'autocannon') {
  process.stderr.write(`bench: --generator must be raw or autocannon, not ${generator}\n`);
  process.exit(2);
}

/** The same closed loop through autocannon (keep-alive, one request in flight per connection). */
async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const variants = options.variants ?? [];
  let turn = 0;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    pipelining: 1,
    duration: Math.max(1, Math.round(options.durationMs / 1000)),
    headers: options.headers ?? {},
    ...(variants.length === 0
      ? {}
      : {
          requests: [
            {
              setupRequest: (request) => {
                const variant = variants[turn++ % variants.length] ?? {};
                return { ...request, path: variant.path ?? request.path, headers: { ...request.headers, ...variant.headers } };
              },
            },
          ],
        }),
  });
  return {
    requests: result.requests.total,
    rps: Math.round(result.requests.total / result.duration),
    p50_ms: result.latency.p50,
    p90_ms: result.latency.p90,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    statuses: {},
  };
}

const generate = generator === 'autocannon' ? runAutocannon : runLoad;

interface Scenario {
  name: string;
  /** The process whose CPU the row reports. */
  server: BenchServer;
  url: string;
  headers: Record<string, string>;
  variants?: LoadOptions['variants'];
  /** Upstream calls per client request the row must make to measure what its name says. */
  upstream?: UpstreamExpectation;
}

interface Measured extends LoadResult {
  cpu_us_per_req: number;
  /** The kernel's share of cpu_us_per_req (system calls): the JavaScript's is the rest. */
  sys_us_per_req: number;
  upstream_per_req: number;
  /** Share of the upstream's answers in the window that were 304 (revalidations, not misses). */
  upstream_304_share: number;
  /** What the server's JavaScript heap allocated in the window / client requests, KB (gc-ledger.ts). */
  heap_kb_per_req: number;
}


/** A per-request figure over every round: the rounds' totals divided by their requests. */
function perRequest(all: Measured[], figure: (r: Measured) => number, scale: number): number {
  const requests = all.reduce((n, r) => n + r.requests, 0);
  const total = all.reduce((n, r) => n + figure(r) * r.requests, 0);
  return Math.round((total / Math.max(1, requests)) * scale) / scale;
}

/** One measured window: the load, and the server's CPU and upstream's count around it. */
async function measure(scenario: Scenario, upstream: BenchServer, load: LoadOptions): Promise<Measured> {
  const usages = () => (scenario.server === upstream ? upstream.usage().then((u) => [u, u] as const) : Promise.all([scenario.server.usage(), upstream.usage()]));
  const [server0, upstream0] = await usages();
  const result = await generate(load);
  const [server1, upstream1] = await usages();
  const requests = Math.max(1, result.requests);
  const calls = (upstream1.requests ?? 0) - (upstream0.requests ?? 0);
  const notModified = (upstream1.notModified ?? 0) - (upstream0.notModified ?? 0);
  return {
    ...result,
    cpu_us_per_req: Math.round(((server1.cpuUs - server0.cpuUs) / requests) * 10) / 10,
    sys_us_per_req: Math.round(((server1.systemUs - server0.systemUs) / requests) * 10) / 10,
    upstream_per_req: Math.round((calls / requests) * 1000) / 1000,
    upstream_304_share: calls === 0 ? 0 : Math.round((notModified / calls) * 100) / 100,
    heap_kb_per_req: Math.round(((server1.allocatedBytes - server0.allocatedBytes) / 1024 / requests) * 10) / 10,
  };
}

/**
 * Every scenario once per round, rounds one after the other: a slow minute of the machine hits every
 * scenario alike instead of one of them, and each row is the median of its rounds.
 */
async function measureRounds(scenarios: Scenario[], upstream: BenchServer): Promise<{ rows: Row[]; perRound: Array<Record<string, RoundFigures>> }> {
  const results = new Map<string, Measured[]>(scenarios.map((s) => [s.name, []]));
  const perRound: Array<Record<string, RoundFigures>> = [];
  for (let round = 1; round <= rounds; round++) {
    const figures: Record<string, RoundFigures> = {};
    // the order turns by one each round: no scenario always follows the same one
    const order = scenarios.map((_, i) => scenarios[(i + round - 1) % scenarios.length] as Scenario);
    for (const scenario of order) {
      const load = { url: scenario.url, connections, headers: scenario.headers, ...(scenario.variants ? { variants: scenario.variants } : {}) };
      // warm-up: fills the cache (every variant once, so the window holds no first request), the
      // keep-alive pools and the JIT (longer the first time)
      if (round === 1 && scenario.variants) await runLoad({ ...load, durationMs: 600_000, maxRequests: scenario.variants.length });
      await generate({ ...load, durationMs: round === 1 ? 2000 : 200 });
      const result = await measure(scenario, upstream, { ...load, durationMs: duration * 1000 });
      results.get(scenario.name)!.push(result);
      figures[scenario.name] = { rps: result.rps, p99_ms: result.p99_ms, cpu_us_per_req: result.cpu_us_per_req };
      process.stderr.write(
        `  round ${round}/${rounds} ${scenario.name}: ${result.rps} req/s, p50 ${result.p50_ms} ms, ${result.cpu_us_per_req} µs CPU/req (${result.sys_us_per_req} system), upstream/req ${result.upstream_per_req} (${Math.round(result.upstream_304_share * 100)}% 304)\n`,
      );
    }
    perRound.push(figures);
  }
  const rows = scenarios.map((scenario): Row => {
    const all = results.get(scenario.name)!;
    return {
      scenario: scenario.name,
      rps: median(all.map((r) => r.rps)),
      p50_ms: median(all.map((r) => r.p50_ms)),
      p90_ms: median(all.map((r) => r.p90_ms)),
      p99_ms: median(all.map((r) => r.p99_ms)),
      errors: all.reduce((n, r) => n + r.errors, 0),
      non2xx: all.reduce((n, r) => n + r.non2xx, 0),
      cpu_us_per_req: perRequest(all, (r) => r.cpu_us_per_req, 10),
      sys_us_per_req: perRequest(all, (r) => r.sys_us_per_req, 10),
      upstream_per_req: perRequest(all, (r) => r.upstream_per_req, 1000),
      heap_kb_per_req: perRequest(all, (r) => r.heap_kb_per_req, 10),
      ...(scenario.upstream ? { upstream_off_rounds: upstreamMisses(scenario.upstream, all.map((r) => r.upstream_per_req)) } : {}),
    };
  });
  return { rows, perRound };
}

async function main(fleet: ServerFleet): Promise<void> {
  const wanted = (name: string) => only.length === 0 || only.includes(name);
  process.stderr.write(`bench: ${rounds} rounds × ${duration}s per scenario, ${connections} connections, ${tokenCount} tokens for distinct, generator ${generator}\n`);
  const upstream = await fleet.start('upstream', 'upstream');
  const auth = { accept: BENCH_ACCEPT, authorization: BENCH_TOKEN };
  // what a row must cost upstream to measure what its name says: a revalidation one call, a fresh hit none
  const every = { upstream: 'every' as const };
  const none = { upstream: 'none' as const };
  const distinct = { ...every, headers: { accept: BENCH_ACCEPT }, variants: distinctTokens(tokenCount).map((authorization) => ({ headers: { authorization } })) };
  const scenarios: Scenario[] = [];
  const add = (name: string, server: BenchServer, load: Pick<Scenario, 'headers' | 'variants' | 'upstream'>) =>
    scenarios.push({ name, server, url: server.url + BENCH_RESOURCE, ...load });
  const mirror = (name: string, ...env: string[]) => fleet.start(name, 'mirror', upstream.url, ...env);

  const probe = await fetch(upstream.url + BENCH_RESOURCE, { headers: auth });
  const etag = probe.headers.get('etag') ?? '';
  await probe.arrayBuffer();
  if (wanted('upstream-304')) add('upstream-304', upstream, { ...every, headers: { ...auth, 'if-none-match': etag } });
  if (wanted('upstream-200')) add('upstream-200', upstream, { ...every, headers: auth });
  if (wanted('bare-proxy') || wanted('bare-proxy-304')) {
    const proxy = await fleet.start('proxy', 'proxy', upstream.url);
    // The same bytes to the client as a mirror hit: upstream sends the full 200 through the proxy.
    if (wanted('bare-proxy')) add('bare-proxy', proxy, { ...every, headers: auth });
    // The cheapest round trip a proxy can make: the client's own validator, a bodiless 304 relayed.
    if (wanted('bare-proxy-304')) add('bare-proxy-304', proxy, { ...every, headers: { ...auth, 'if-none-match': etag } });
  }
  // The floor: a minimal Map cache, every request revalidated (it does not coalesce).
  if (wanted('floor-cache-hit')) add('floor-cache-hit', await fleet.start('floor-cache-hit', 'floor', upstream.url), { ...every, headers: auth });
  // The floor of a fresh hit: the same Map cache replaying what it stored within the freshness window.
  if (wanted('floor-cache-fresh')) add('floor-cache-fresh', await fleet.start('floor-cache-fresh', 'floor-fresh', upstream.url, String(freshnessMs)), { ...none, headers: auth });
  if (wanted('floor-cache-distinct')) add('floor-cache-distinct', await fleet.start('floor-cache-distinct', 'floor', upstream.url), distinct);
  if (wanted('mirror-memory-hit')) add('mirror-memory-hit', await mirror('mirror-memory-hit'), { headers: auth });
  if (wanted('mirror-memory-fresh')) {
    add('mirror-memory-fresh', await mirror('mirror-memory-fresh', `MIRROR_CACHE_FRESHNESS_MS=${freshnessMs}`), { ...none, headers: auth });
  }
  if (wanted('mirror-memory-revalidate-distinct')) add('mirror-memory-revalidate-distinct', await mirror('mirror-memory-revalidate-distinct'), distinct);
  for (const variant of variants) {
    const name = `mirror-memory-revalidate-distinct+${variant.name}`;
    add(name, await fleet.startWith(name, variant.flags, 'mirror', upstream.url, ...variant.env), distinct);
  }
  const needsRedis = ['mirror-redis-hit', 'mirror-redis-revalidate-distinct', 'cache-ops', 'governor-ops'].some(wanted);
  const redis: RedisProcess | undefined = needsRedis ? await startRedis() : undefined;
  const rows: Row[] = [];
  let perRound: Array<Record<string, RoundFigures>> = [];
  try {
    const onRedis = (name: string, url: string) => mirror(name, 'MIRROR_CACHE_BACKEND=redis', `MIRROR_REDIS_URL=${url}`);
    if (redis && wanted('mirror-redis-hit')) add('mirror-redis-hit', await onRedis('mirror-redis-hit', redis.url), { headers: auth });
    if (redis && wanted('mirror-redis-revalidate-distinct')) {
      add('mirror-redis-revalidate-distinct', await onRedis('mirror-redis-revalidate-distinct', redis.url), distinct);
    }
    if (wanted('mirror-redis-breaker-open')) {
      // Redis unreachable: the breaker is open from the start and every lookup goes to memory.
      add('mirror-redis-breaker-open', await onRedis('mirror-redis-breaker-open', `redis://127.0.0.1:${await freePort()}`), { headers: auth });
    }
    const measured = await measureRounds(scenarios, upstream);
    rows.push(...measured.rows);
    perRound = measured.perRound;
    if (redis && wanted('cache-ops')) rows.push(...(await measureCacheOps(redis.url)).map((r) => ({ ...r, errors: 0, non2xx: 0 })));
    if (redis && wanted('governor-ops')) rows.push(...(await measureGovernorOps(redis.url)).map((r) => ({ ...r, errors: 0, non2xx: 0 })));
  } finally {
    await redis?.stop();
  }
  const memory = wanted('memory-filled') ? await measureMemoryFill(fleet, upstream, memMaxBytes, connections) : undefined;
  if (memory) rows.push(memory);

  printTable(rows);
  for (const warning of upstreamWarnings(rows)) console.log(warning);
  const find = (name: string) => rows.find((r) => r.scenario === name);
  printGoals(rows, perRound);
  const proxy = find('bare-proxy');
  const hit = find('mirror-memory-hit');
  const redisHit = find('mirror-redis-hit');
  if (proxy && hit) {
    const ratios = perRound.map((r) => `${Math.round(((r['mirror-memory-hit']?.rps ?? NaN) / (r['bare-proxy']?.rps ?? NaN)) * 100)}%`);
    console.log(
      `\nmirror hit throughput = ${Math.round((hit.rps / proxy.rps) * 100)}% of the bare proxy (medians; per round ${ratios.join(', ')}); p50 overhead = ${(hit.p50_ms - proxy.p50_ms).toFixed(2)} ms`,
    );
  }
  if (hit && redisHit) {
    console.log(`redis adds ${(redisHit.p50_ms - hit.p50_ms).toFixed(3)} ms p50, ${(redisHit.p99_ms - hit.p99_ms).toFixed(3)} ms p99 per request over memory`);
  }
  const memOp = find('op: memory lookup');
  const redisOp = find('op: redis lookup (sealed)');
  if (memOp && redisOp) console.log(`cache lookup: redis ${redisOp.p50_ms} ms p50 vs memory ${memOp.p50_ms} ms`);
  if (memory) {
    console.log(
      `memory filled: ${memory.cache_entries} entries, ${memory.cache_bytes} B of maxBytes ${memory.max_bytes}; RSS ${memory.rss_mb} MiB (idle ${memory.rss_idle_mb} MiB, peak ${memory.peak_rss_mb} MiB) vs limit 1.5 × maxBytes + 80 MiB = ${memory.rss_limit_mb} MiB: ${memory.rss_within_limit ? 'within' : 'OVER'}`,
    );
  }
  // a run of some scenarios (--only) does not replace the full run's results
  const out = join(here, 'results', only.length > 0 ? 'bench-only.json' : generator === 'autocannon' ? 'bench-autocannon.json' : 'bench.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(rows, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

let fleet: ServerFleet | undefined;
Promise.resolve()
  .then(() => {
    fleet = new ServerFleet(logFile, runtime, cpuProfDir === '' ? undefined : cpuProfDir);
    return main(fleet);
  })
  .catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => fleet?.stop());
