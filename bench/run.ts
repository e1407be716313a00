/**
 * `npm run bench`: measures, in one run on this machine, the fake upstream alone, a bare undici
 * proxy (the floor a Node proxy reaches), and the mirror's revalidated-hit path (every request a 304
 * upstream), then prints a table and writes bench/results/bench.json.
 *
 *   npm run bench -- [--rounds 3] [--duration 5] [--connections 10] [--only mirror-memory,...] [--generator raw|autocannon]
 *
 * Every scenario runs once per round (servers stay up); each row is the median of its rounds, and
 * the hit/proxy ratio is printed per round too, so the spread of this noisy machine is visible.
 *
 * The default generator (bench/load.ts) keeps latencies in microseconds; `--generator autocannon`
 * runs the same scenarios with autocannon as a cross-check of the throughput figures (its latencies
 * are coarser) and writes bench/results/bench-autocannon.json instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { runLoad, type LoadResult } from './load.js';
import { measureCacheOps } from './cache-ops.js';
import { startRedis, freePort, type RedisProcess } from '../test/support/redis-harness.js';
import { githubEtag } from '../test/support/github-etag.js';
import { BENCH_RESOURCE, BENCH_TOKEN } from './scenario.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Row {
  scenario: string;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
}

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] ? (process.argv[at + 1] as string) : fallback;
}

const duration = Number(arg('duration', '5'));
const connections = Number(arg('connections', '10'));
const only = arg('only', '').split(',').filter(Boolean);
const rounds = Math.max(1, Number(arg('rounds', '3')));
const generator = arg('generator', 'raw');
if (generator !== 'raw' && generator !== 'autocannon') {
  process.stderr.write(`bench: --generator must be raw or autocannon, not ${generator}\n`);
  process.exit(2);
}
const children: ChildProcess[] = [];

/** Starts one bench server in its own process and waits for its URL. */
function startServer(...args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'server.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    // the server's own log lines may come first: wait for the line that announces the URL
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { url?: string; level?: number };
        if (parsed.url !== undefined && parsed.level === undefined) resolve(parsed.url);
      } catch {
        // not JSON: a log line of another shape
        return;
      }
    });
    child.once('exit', (code) => reject(new Error(`bench server ${args[0]} exited with ${code}`)));
  });
}

/** The same closed loop through autocannon (keep-alive, one request in flight per connection). */
async function runAutocannon(options: { url: string; connections: number; durationMs: number; headers: Record<string, string> }): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    pipelining: 1,
    duration: Math.max(1, Math.round(options.durationMs / 1000)),
    headers: options.headers,
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
  url: string;
  headers: Record<string, string>;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

/**
 * Every scenario once per round, rounds one after the other: a slow minute of the machine hits every
 * scenario alike instead of one of them, and each row is the median of its rounds.
 */
async function measureRounds(scenarios: Scenario[]): Promise<{ rows: Row[]; perRound: Array<Record<string, number>> }> {
  const results = new Map<string, LoadResult[]>(scenarios.map((s) => [s.name, []]));
  const perRound: Array<Record<string, number>> = [];
  for (let round = 1; round <= rounds; round++) {
    const rps: Record<string, number> = {};
    for (const scenario of scenarios) {
      // warm-up: fills the cache, the keep-alive pools and the JIT (longer the first time)
      await generate({ url: scenario.url, connections, durationMs: round === 1 ? 2000 : 500, headers: scenario.headers });
      const result = await generate({ url: scenario.url, connections, durationMs: duration * 1000, headers: scenario.headers });
      results.get(scenario.name)!.push(result);
      rps[scenario.name] = result.rps;
      process.stderr.write(`  round ${round}/${rounds} ${scenario.name}: ${result.rps} req/s, p50 ${result.p50_ms} ms\n`);
    }
    perRound.push(rps);
  }
  const rows = scenarios.map(({ name }) => {
    const all = results.get(name)!;
    return {
      scenario: name,
      rps: median(all.map((r) => r.rps)),
      p50_ms: median(all.map((r) => r.p50_ms)),
      p90_ms: median(all.map((r) => r.p90_ms)),
      p99_ms: median(all.map((r) => r.p99_ms)),
      errors: all.reduce((n, r) => n + r.errors, 0),
      non2xx: all.reduce((n, r) => n + r.non2xx, 0),
    };
  });
  return { rows, perRound };
}

function printTable(rows: Row[]): void {
  const header = ['scenario', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'non-2xx'];
  const lines = rows.map((r) => [r.scenario, String(r.rps), String(r.p50_ms), String(r.p90_ms), String(r.p99_ms), String(r.errors), String(r.non2xx)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |';
  console.log(fmt(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
}

async function main(): Promise<void> {
  const wanted = (name: string) => only.length === 0 || only.includes(name);
  process.stderr.write(`bench: ${rounds} rounds × ${duration}s per scenario, ${connections} connections, generator ${generator}\n`);
  const upstream = await startServer('upstream');
  const auth = { authorization: BENCH_TOKEN };
  const scenarios: Scenario[] = [];

  const probe = await fetch(upstream + BENCH_RESOURCE, { headers: auth });
  // GitHub's ETag (and the fake's) hashes the request's Accept: fetch sends one, the load generators
  // do not, so the validator they send is computed for their own headers.
  const etag = githubEtag(auth, Buffer.from(await probe.arrayBuffer()));
  if (wanted('upstream-304')) scenarios.push({ name: 'upstream-304', url: upstream + BENCH_RESOURCE, headers: { ...auth, 'if-none-match': etag } });
  if (wanted('upstream-200')) scenarios.push({ name: 'upstream-200', url: upstream + BENCH_RESOURCE, headers: auth });
  if (wanted('bare-proxy') || wanted('bare-proxy-304')) {
    const proxy = await startServer('proxy', upstream);
    // The same bytes to the client as a mirror hit: upstream sends the full 200 through the proxy.
    if (wanted('bare-proxy')) scenarios.push({ name: 'bare-proxy', url: proxy + BENCH_RESOURCE, headers: auth });
    // The cheapest round trip a proxy can make: the client's own validator, a bodiless 304 relayed.
    if (wanted('bare-proxy-304')) scenarios.push({ name: 'bare-proxy-304', url: proxy + BENCH_RESOURCE, headers: { ...auth, 'if-none-match': etag } });
  }
  if (wanted('mirror-memory-hit')) {
    const mirror = await startServer('mirror', upstream, 'memory');
    scenarios.push({ name: 'mirror-memory-hit', url: mirror + BENCH_RESOURCE, headers: auth });
  }
  const needsRedis = ['mirror-redis-hit', 'cache-ops'].some(wanted);
  const redis: RedisProcess | undefined = needsRedis ? await startRedis() : undefined;
  const rows: Row[] = [];
  let perRound: Array<Record<string, number>> = [];
  try {
    if (redis && wanted('mirror-redis-hit')) {
      const mirror = await startServer('mirror', upstream, 'redis', redis.url);
      scenarios.push({ name: 'mirror-redis-hit', url: mirror + BENCH_RESOURCE, headers: auth });
    }
    if (wanted('mirror-redis-breaker-open')) {
      // Redis unreachable: the breaker is open from the start and every lookup goes to memory.
      const mirror = await startServer('mirror', upstream, 'redis', `redis://127.0.0.1:${await freePort()}`);
      scenarios.push({ name: 'mirror-redis-breaker-open', url: mirror + BENCH_RESOURCE, headers: auth });
    }
    const measured = await measureRounds(scenarios);
    rows.push(...measured.rows);
    perRound = measured.perRound;
    if (redis && wanted('cache-ops')) rows.push(...(await measureCacheOps(redis.url)).map((r) => ({ ...r, errors: 0, non2xx: 0 })));
  } finally {
    await redis?.stop();
  }

  printTable(rows);
  const find = (name: string) => rows.find((r) => r.scenario === name);
  const proxy = find('bare-proxy');
  const hit = find('mirror-memory-hit');
  const redisHit = find('mirror-redis-hit');
  if (proxy && hit) {
    const ratios = perRound.map((r) => `${Math.round(((r['mirror-memory-hit'] ?? NaN) / (r['bare-proxy'] ?? NaN)) * 100)}%`);
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
  const out = join(here, 'results', generator === 'autocannon' ? 'bench-autocannon.json' : 'bench.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(rows, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
  });
