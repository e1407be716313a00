/**
 * `npm run bench`: measures, in one run on this machine, the fake upstream alone, a bare undici
 * proxy (the floor a Node proxy reaches), and the mirror's revalidated-hit path (every request a 304
 * upstream), then prints a table and writes bench/results/bench.json.
 *
 *   npm run bench -- [--duration 10] [--connections 10] [--only mirror-memory,...]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { runLoad } from './load.js';
import { measureCacheOps } from './cache-ops.js';
import { startRedis, freePort, type RedisProcess } from '../test/support/redis-harness.js';
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

const duration = Number(arg('duration', '10'));
const connections = Number(arg('connections', '10'));
const only = arg('only', '').split(',').filter(Boolean);
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

async function load(scenario: string, url: string, headers: Record<string, string>): Promise<Row> {
  // Warm-up: fills the cache, the keep-alive pools and the JIT.
  await runLoad({ url, connections, durationMs: 2000, headers });
  const result = await runLoad({ url, connections, durationMs: duration * 1000, headers });
  const row: Row = {
    scenario,
    rps: result.rps,
    p50_ms: result.p50_ms,
    p90_ms: result.p90_ms,
    p99_ms: result.p99_ms,
    errors: result.errors,
    non2xx: result.non2xx,
  };
  process.stderr.write(`  ${scenario}: ${row.rps} req/s, p50 ${row.p50_ms} ms\n`);
  return row;
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
  process.stderr.write(`bench: ${duration}s per scenario, ${connections} connections\n`);
  const upstream = await startServer('upstream');
  const rows: Row[] = [];
  const auth = { authorization: BENCH_TOKEN };

  const probe = await fetch(upstream + BENCH_RESOURCE, { headers: auth });
  const etag = probe.headers.get('etag') ?? '';
  await probe.arrayBuffer();
  if (wanted('upstream-304')) {
    rows.push(await load('upstream-304', upstream + BENCH_RESOURCE, { ...auth, 'if-none-match': etag }));
  }
  if (wanted('upstream-200')) rows.push(await load('upstream-200', upstream + BENCH_RESOURCE, auth));
  if (wanted('bare-proxy') || wanted('bare-proxy-304')) {
    const proxy = await startServer('proxy', upstream);
    // The same bytes to the client as a mirror hit: upstream sends the full 200 through the proxy.
    if (wanted('bare-proxy')) rows.push(await load('bare-proxy', proxy + BENCH_RESOURCE, auth));
    // The cheapest round trip a proxy can make: the client's own validator, a bodiless 304 relayed.
    if (wanted('bare-proxy-304')) rows.push(await load('bare-proxy-304', proxy + BENCH_RESOURCE, { ...auth, 'if-none-match': etag }));
  }
  if (wanted('mirror-memory-hit')) {
    const mirror = await startServer('mirror', upstream, 'memory');
    rows.push(await load('mirror-memory-hit', mirror + BENCH_RESOURCE, auth));
  }
  const needsRedis = ['mirror-redis-hit', 'cache-ops'].some(wanted);
  const redis: RedisProcess | undefined = needsRedis ? await startRedis() : undefined;
  try {
    if (redis && wanted('mirror-redis-hit')) {
      const mirror = await startServer('mirror', upstream, 'redis', redis.url);
      rows.push(await load('mirror-redis-hit', mirror + BENCH_RESOURCE, auth));
    }
    if (wanted('mirror-redis-breaker-open')) {
      // Redis unreachable: the breaker is open from the start and every lookup goes to memory.
      const mirror = await startServer('mirror', upstream, 'redis', `redis://127.0.0.1:${await freePort()}`);
      rows.push(await load('mirror-redis-breaker-open', mirror + BENCH_RESOURCE, auth));
    }
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
    console.log(`\nmirror hit throughput = ${Math.round((hit.rps / proxy.rps) * 100)}% of the bare proxy; p50 overhead = ${(hit.p50_ms - proxy.p50_ms).toFixed(2)} ms`);
  }
  if (hit && redisHit) {
    console.log(`redis adds ${(redisHit.p50_ms - hit.p50_ms).toFixed(3)} ms p50, ${(redisHit.p99_ms - hit.p99_ms).toFixed(3)} ms p99 per request over memory`);
  }
  const memOp = find('op: memory lookup');
  const redisOp = find('op: redis lookup (sealed)');
  if (memOp && redisOp) console.log(`cache lookup: redis ${redisOp.p50_ms} ms p50 vs memory ${memOp.p50_ms} ms`);
  const out = join(here, 'results', 'bench.json');
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
