/**
 * `npm run simulate`: the scale simulation of issue 7 (bench/simulate-lib.ts, docs/scaling.md).
 * Runs every backend at every replica count, prints a table on stdout (progress on stderr) and writes
 * bench/results/simulate.json.
 *
 *   npm run simulate -- --replicas 3,10 --clients 3 --resources 20 --backends redis
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CLI_USAGE, formatTable, parseCliArgs, runSimulation, sortRows, type PhaseRow } from './simulate-lib.js';

async function main(): Promise<void> {
  const parsed = parseCliArgs(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(`${CLI_USAGE}\n`);
    return;
  }
  const o = parsed;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('MIRROR_') && value !== undefined) env[name] = value;
  }
  const progress = (line: string): void => {
    process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  };
  progress(
    `simulate: backends ${o.backends.join(',')} × replicas ${o.replicas.join(',')}; ${o.clients} clients × ${o.resources} resources, ` +
      `quota ${o.quota}/h per token, upstream latency ${o.upstreamLatencyMs} ms, ${o.balancer} balancer, warm-up fan-out ${o.fanout ?? 'R'}, ` +
      `shared bodies ${o.share.map((v) => (v ? 'on' : 'off')).join(',')}`,
  );
  const started = performance.now();
  const rows: PhaseRow[] = [];
  for (const replicas of o.replicas) {
    for (const backend of o.backends) {
      for (const shareAcrossCredentials of o.share) {
      const result = await runSimulation({
        backend,
        replicas,
        shareAcrossCredentials,
        rotationPasses: o.rotationPasses,
        clients: o.clients,
        resources: o.resources,
        ...(o.fanout === undefined ? {} : { fanout: o.fanout }),
        steadyPasses: o.steadyPasses,
        ...(o.changesPerStep === undefined ? {} : { changesPerStep: o.changesPerStep }),
        ...(o.restoreChanges === undefined ? {} : { restoreChanges: o.restoreChanges }),
        outagePasses: o.outagePasses,
        quota: o.quota,
        upstreamLatencyMs: o.upstreamLatencyMs,
        balancer: o.balancer,
        seed: o.seed,
        phases: o.phases,
        env,
        progress,
      });
      rows.push(...result);
      }
    }
  }
  const sorted = sortRows(rows);
  process.stdout.write(`${formatTable(sorted)}\n`);
  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(sorted, null, 2)}\n`);
  const missed = sorted.filter((r) => r.target_met === false);
  progress(`simulate: done in ${Math.round((performance.now() - started) / 1000)} s; wrote ${o.out}; ${missed.length === 0 ? 'every target met' : `${missed.length} target(s) missed`}`);
}

// exit (rather than die) on Ctrl-C, so the exit hook of the Redis harness kills the redis-server it started
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

main().catch((error: unknown) => {
  process.stderr.write(`simulate failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
