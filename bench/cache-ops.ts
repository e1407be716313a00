/**
 * Micro-measurements in the bench process: one cache lookup per backend (what Redis adds to a hit,
 * sealing included) and the cost of sealing and opening an entry.
 */
import { randomBytes } from 'node:crypto';
import { MemoryCache } from '../src/adapters/cache/memory/memory-cache.adapter.js';
import { RedisCache } from '../src/adapters/cache/redis/redis-cache.adapter.js';
import { writeValue, readValue } from '../src/adapters/cache/sealed-value.js';
import type { CachePort } from '../src/domain/ports/cache.port.js';
import type { CachedEntry } from '../src/domain/model.js';
import { BENCH_BODY } from './scenario.js';

export interface OpRow {
  scenario: string;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
}

const entry: CachedEntry = {
  status: 200,
  headers: { 'content-type': 'application/json; charset=utf-8', etag: '"bench"', 'cache-control': 'private, max-age=60' },
  body: Buffer.from(JSON.stringify(BENCH_BODY)),
  etag: '"bench"',
  storedAt: Date.now(),
  validatedAt: Date.now(),
};

function summarize(scenario: string, samples: number[], elapsedMs: number): OpRow {
  samples.sort((a, b) => a - b);
  const pct = (p: number) => Math.round((samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? 0) * 1000) / 1000;
  return { scenario, rps: Math.round(samples.length / (elapsedMs / 1000)), p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99) };
}

async function timeLookups(scenario: string, cache: CachePort, count: number, sealKey: Uint8Array): Promise<OpRow> {
  await cache.store('bench:key', entry, 3600, sealKey);
  for (let i = 0; i < 500; i++) await cache.lookup('bench:key', sealKey); // warm-up
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const found = await cache.lookup('bench:key', sealKey);
    samples.push(performance.now() - t0);
    if (found === undefined) throw new Error(`${scenario}: entry not found`);
  }
  return summarize(scenario, samples, performance.now() - started);
}

export async function measureCacheOps(redisUrl: string, count = 5000): Promise<OpRow[]> {
  const sealKey = randomBytes(32);
  const rows: OpRow[] = [];
  rows.push(await timeLookups('op: memory lookup', new MemoryCache({ maxBytes: 64 * 1024 * 1024 }), count, sealKey));
  const redis = new RedisCache({ url: redisUrl, keyPrefix: 'bench:', commandTimeoutMs: 1000 });
  await redis.start();
  try {
    rows.push(await timeLookups('op: redis lookup (sealed)', redis, count, sealKey));
  } finally {
    await redis.close();
  }
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const value = writeValue(entry, 'k', sealKey);
    const back = readValue(value, 'k', sealKey);
    samples.push(performance.now() - t0);
    if (!back.ok) throw new Error('seal round trip failed');
  }
  rows.push(summarize(`op: encode+seal+open+decode ${entry.body.byteLength} B entry`, samples, performance.now() - started));
  return rows;
}
