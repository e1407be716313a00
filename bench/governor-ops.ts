/**
 * Micro-measurement of the upstream governor: what asking for a turn and giving it back adds to one
 * upstream call (acquire + release), in memory and on Redis (one round trip per call, EVALSHA; and with
 * leases of 250 ms, upstream.governor.leaseMs, most turns without one). Limits
 * far above the load, so nothing waits: the figure is the bookkeeping alone. 100 credentials in turn.
 * Run alone: `npx tsx bench/governor-ops.ts` (starts its own redis-server); `npm run bench` includes it.
 */
import { fileURLToPath } from 'node:url';
import { RedisCache } from '../src/adapters/cache/redis/redis-cache.adapter.js';
import { MemoryGovernor } from '../src/adapters/governor/memory-governor.adapter.js';
import { RedisGovernor } from '../src/adapters/governor/redis-governor.adapter.js';
import { systemClock } from '../src/adapters/clock/system-clock.adapter.js';
import { governedCall, type GovernorPort } from '../src/domain/ports/governor.port.js';
import { startRedis } from '../test/support/redis-harness.js';
import type { OpRow } from './cache-ops.js';

const LIMITS = { enabled: true, maxConcurrent: 1_000_000, pointsPerMinute: 1_000_000_000, writeSpacingMs: 0, maxWaitMs: 1000 };
const PARTITIONS = Array.from({ length: 100 }, (_, i) => `bench-partition-${i}`);

function summarize(scenario: string, samples: number[], elapsedMs: number): OpRow {
  samples.sort((a, b) => a - b);
  const pct = (p: number) => Math.round((samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? 0) * 1000) / 1000;
  return { scenario, rps: Math.round(samples.length / (elapsedMs / 1000)), p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99) };
}

async function timeTurns(scenario: string, governor: GovernorPort, count: number): Promise<OpRow> {
  const turn = async (i: number) => {
    const admission = await governor.acquire(governedCall(PARTITIONS[i % PARTITIONS.length] as string, 'GET'));
    if (admission.kind !== 'admitted') throw new Error(`${scenario}: ${admission.kind}`);
    admission.permit.release(true);
  };
  for (let i = 0; i < 500; i++) await turn(i); // warm-up
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await turn(i);
    samples.push(performance.now() - t0);
  }
  return summarize(scenario, samples, performance.now() - started);
}

/** `op: governor acquire+release` rows, memory then Redis. */
export async function measureGovernorOps(redisUrl: string, count = 5000): Promise<OpRow[]> {
  const rows: OpRow[] = [];
  const memory = new MemoryGovernor({ ...LIMITS, clock: systemClock });
  try {
    rows.push(await timeTurns('op: governor acquire+release (memory)', memory, count));
  } finally {
    await memory.close();
  }
  const cache = new RedisCache({ url: redisUrl, keyPrefix: 'bench-gov:', commandTimeoutMs: 1000 });
  await cache.start();
  const redis = new RedisGovernor({ ...LIMITS, leaseMs: 0, clock: systemClock, client: cache.client, keyPrefix: 'bench-gov:' });
  try {
    rows.push(await timeTurns('op: governor acquire+release (redis)', redis, count));
  } finally {
    await redis.close();
  }
  // the same credentials come back every 100 turns (well within a lease): most turns from a lease
  const leased = new RedisGovernor({ ...LIMITS, leaseMs: 250, clock: systemClock, client: cache.client, keyPrefix: 'bench-gov-lease:' });
  try {
    rows.push(await timeTurns('op: governor acquire+release (redis, leases)', leased, count));
  } finally {
    await leased.close();
    await cache.close();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await startRedis();
  try {
    console.table(await measureGovernorOps(server.url));
  } finally {
    await server.stop();
  }
}
