/**
 * `npm run bench:ab`: what a setting costs, measured as finely interleaved as this noisy machine
 * needs. The floor cache and mirrors (the default one, plus one per `--variant`) are all started,
 * warmed, then measured in turn in short slices (`--slice` ms, default 1000) for `--cycles` cycles
 * (default 12) under the distinct-token load (every request its own revalidation). A slow stretch of
 * the machine then hits every server alike, which one long window per server (`npm run bench`)
 * cannot promise: there, rows measured a minute apart moved by 2× here.
 *
 *   npm run bench:ab -- [--variant NAME:MIRROR_X=v,MIRROR_Y=w,--node-flag ...] [--baseline REV] [--cycles 12] [--slice 1000] [--connections 10]
 *
 * A variant's items are settings (MIRROR_X=v) or, starting with `--`, node flags for that mirror.
 * `$REDIS` in a setting is the URL of a redis-server the tool starts for the run (only when one is
 * named): `--variant redis:MIRROR_CACHE_BACKEND=redis,MIRROR_REDIS_URL=$REDIS`.
 * `--baseline REV` adds a row `baseline@<commit>`: the default mirror as built from that revision
 * (a commit, a branch, `HEAD~2`), so a change of code is priced in the same run as the working tree;
 * a variant's item `@REV` does the same for that variant (`--variant fresh-old:@main,MIRROR_…`).
 * Each row also has the bytes its JavaScript heap allocated and its main-thread GC time per request
 * (bench/gc-ledger.ts): they move far less between runs than CPU time, so a cut in allocation shows.
 * Prints, per server, the CPU µs per request (user + system, and system alone) summed over every
 * slice, its ratio to the floor and to the default mirror, and the median of the per-cycle ratios;
 * writes bench/results/ab.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from './load.js';
import { revisionCommand, ServerFleet, type BenchServer } from './servers.js';
import { arg, median, variantsOf } from './cli-args.js';
import { startRedis, type RedisProcess } from '../test/support/redis-harness.js';
import { BENCH_ACCEPT, BENCH_RESOURCE, DISTINCT_TOKENS, distinctTokens } from './scenario.js';

const here = dirname(fileURLToPath(import.meta.url));


const cycles = Math.max(1, Number(arg('cycles', '12')));
const sliceMs = Math.max(200, Number(arg('slice', '1000')));
const connections = Number(arg('connections', '10'));
const variants = variantsOf();

interface Measured {
  name: string;
  server: BenchServer;
  requests: number;
  cpuUs: number;
  systemUs: number;
  allocatedBytes: number;
  gcUs: number;
  /** Governor turns admitted from a lease / all admitted (github_mirror_governor_leased_total / wait_seconds_count{result="admitted"}). */
  leasedShare?: number;
  /** Per cycle: CPU µs per request. */
  perCycle: number[];
  /** Commands the run's redis-server ran during this server's slices, by command (only when one runs). */
  redisCalls: Map<string, number>;
}

/** `INFO commandstats` of the run's redis-server as calls by command (empty when none runs). */
async function redisCommandCalls(): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  if (redis === undefined) return calls;
  for (const match of (await redis.cli('INFO', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]));
  return calls;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

let redis: RedisProcess | undefined;

async function main(fleet: ServerFleet): Promise<void> {
  if (variants.some((variant) => variant.env.some((item) => item.includes('$REDIS')))) redis = await startRedis();
  const upstream = await fleet.start('upstream', 'upstream');
  const servers: Array<{ name: string; server: BenchServer }> = [
    { name: 'floor-cache-distinct', server: await fleet.start('floor', 'floor', upstream.url) },
    { name: 'mirror', server: await fleet.start('mirror', 'mirror', upstream.url) },
  ];
  const baseline = arg('baseline', '');
  if (baseline !== '') {
    const { commit, command } = revisionCommand(baseline);
    const name = `baseline@${commit.slice(0, 10)}`;
    servers.push({ name, server: await fleet.startFrom(command, name, [], 'mirror', upstream.url) });
  }
  for (const variant of variants) {
    const name = `mirror+${variant.name}`;
    const env = variant.env.map((item) => item.replaceAll('$REDIS', redis?.url ?? ''));
    const command = variant.revision === undefined ? undefined : revisionCommand(variant.revision).command;
    servers.push({
      name,
      server: command === undefined ? await fleet.startWith(name, variant.flags, 'mirror', upstream.url, ...env) : await fleet.startFrom(command, name, variant.flags, 'mirror', upstream.url, ...env),
    });
  }
  const tokens = distinctTokens(DISTINCT_TOKENS).map((authorization) => ({ headers: { authorization } }));
  const load = (server: BenchServer) => ({ url: server.url + BENCH_RESOURCE, connections, headers: { accept: BENCH_ACCEPT }, variants: tokens });
  process.stderr.write(`bench:ab: ${servers.length} servers, ${cycles} cycles × ${sliceMs} ms slices, ${connections} connections, ${DISTINCT_TOKENS} tokens\n`);
  for (const { server } of servers) {
    await runLoad({ ...load(server), durationMs: 600_000, maxRequests: tokens.length });
    await runLoad({ ...load(server), durationMs: 2000 });
  }
  const measured: Measured[] = servers.map(({ name, server }) => ({ name, server, requests: 0, cpuUs: 0, systemUs: 0, allocatedBytes: 0, gcUs: 0, perCycle: [], redisCalls: new Map() }));
  for (let cycle = 1; cycle <= cycles; cycle++) {
    // a different order each cycle, so no server always follows the same one
    const order = measured.map((_, i) => measured[(i + cycle) % measured.length] as Measured);
    for (const m of order) {
      const commandsBefore = await redisCommandCalls();
      const before = await m.server.usage();
      const result = await runLoad({ ...load(m.server), durationMs: sliceMs });
      const after = await m.server.usage();
      for (const [command, calls] of await redisCommandCalls()) {
        const ran = calls - (commandsBefore.get(command) ?? 0);
        // the two INFO calls of this bookkeeping are not the server's
        if (command !== 'info' && ran > 0) m.redisCalls.set(command, (m.redisCalls.get(command) ?? 0) + ran);
      }
      m.requests += result.requests;
      m.cpuUs += after.cpuUs - before.cpuUs;
      m.systemUs += after.systemUs - before.systemUs;
      // a server built from a revision before the GC ledger reports neither (NaN: printed as —)
      m.allocatedBytes += after.allocatedBytes - before.allocatedBytes;
      m.gcUs += after.gcUs - before.gcUs;
      m.perCycle.push((after.cpuUs - before.cpuUs) / Math.max(1, result.requests));
    }
    process.stderr.write(`  cycle ${cycle}/${cycles}: ${measured.map((m) => `${m.name} ${round1(m.perCycle[cycle - 1] ?? NaN)}`).join(', ')} µs/req\n`);
  }
  // the governor's leases (Redis): the share of upstream turns admitted from a lease, whole run
  for (const m of measured.slice(1)) m.leasedShare = await leasedShare(m.server);
  const [floor, base] = measured as [Measured, Measured];
  const perReq = (m: Measured) => m.cpuUs / Math.max(1, m.requests);
  const rows = measured.map((m) => ({
    server: m.name,
    requests: m.requests,
    cpu_us_per_req: round1(perReq(m)),
    sys_us_per_req: round1(m.systemUs / Math.max(1, m.requests)),
    alloc_kb_per_req: Number.isFinite(m.allocatedBytes) ? round1(m.allocatedBytes / 1024 / Math.max(1, m.requests)) : null,
    gc_us_per_req: Number.isFinite(m.gcUs) ? round1(m.gcUs / Math.max(1, m.requests)) : null,
    vs_floor: Math.round((perReq(m) / perReq(floor)) * 100) / 100,
    vs_mirror: Math.round((perReq(m) / perReq(base)) * 100) / 100,
    vs_floor_median_of_cycles: Math.round(median(m.perCycle.map((v, i) => v / (floor.perCycle[i] ?? NaN))) * 100) / 100,
    ...(m.leasedShare === undefined ? {} : { governor_leased_share: m.leasedShare }),
    ...(m.redisCalls.size === 0
      ? {}
      : { redis_commands_per_req: Object.fromEntries([...m.redisCalls].sort((a, b) => b[1] - a[1]).map(([command, calls]) => [command, Math.round((calls / Math.max(1, m.requests)) * 1000) / 1000])) }),
  }));
  console.log('| server | requests | CPU µs/req | of it sys | × floor | × mirror | × floor (median of cycles) | heap KB/req | GC µs/req |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.server} | ${r.requests} | ${r.cpu_us_per_req} | ${r.sys_us_per_req} | ${r.vs_floor} | ${r.vs_mirror} | ${r.vs_floor_median_of_cycles} | ${r.alloc_kb_per_req ?? '—'} | ${r.gc_us_per_req ?? '—'} |`,
    );
  }
  for (const r of rows) if (r.governor_leased_share !== undefined && r.governor_leased_share > 0) console.log(`${r.server}: ${Math.round(r.governor_leased_share * 100)} % of the governor's turns admitted from a lease`);
  for (const r of rows) {
    if (r.redis_commands_per_req === undefined) continue;
    const total = Object.values(r.redis_commands_per_req).reduce((sum, calls) => sum + calls, 0);
    console.log(`${r.server}: ${Math.round(total * 1000) / 1000} Redis commands per request (${Object.entries(r.redis_commands_per_req).map(([command, calls]) => `${command} ${calls}`).join(', ')})`);
  }
  const out = join(here, 'results', 'ab.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ cycles, slice_ms: sliceMs, connections, baseline: baseline === '' ? undefined : baseline, variants, rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

/** The share of a mirror's governor turns admitted from a lease, from its /metrics (undefined when it cannot tell). */
async function leasedShare(server: BenchServer): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const leased = /^github_mirror_governor_leased_total (\S+)$/m.exec(text);
    const admitted = /^github_mirror_governor_wait_seconds_count\{result="admitted"\} (\S+)$/m.exec(text);
    if (leased === null || admitted === null || Number(admitted[1]) === 0) return undefined;
    return Math.round((Number(leased[1]) / Number(admitted[1])) * 1000) / 1000;
  } catch {
    return undefined;
  }
}

const fleet = new ServerFleet(arg('log-file', '/dev/null'), 'compiled');
main(fleet)
  .catch((error: unknown) => {
    process.stderr.write(`bench:ab failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await fleet.stop();
    await redis?.stop();
  });
