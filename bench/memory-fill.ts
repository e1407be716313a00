/**
 * The memory check of issue 13: a mirror (memory backend, production defaults) is filled through
 * HTTP with distinct ~4 KB resources, asked by 256 tokens in turn, up to cache.memory.maxBytes and a
 * little beyond (so the LRU is evicting at the end), then its RSS is compared with 1.5 × maxBytes +
 * 80 MiB. The fill is a row of its own (`memory-filled`): every request a miss, so upstream/req ≈ 1.00.
 */
import { runLoad } from './load.js';
import type { BenchServer, ServerFleet } from './servers.js';
import type { Row } from './report.js';
import { BENCH_ACCEPT, DISTINCT_TOKENS, ITEM_PREFIX, distinctTokens } from './scenario.js';

const MiB = 1024 * 1024;
const DEFAULT_MAX_ENTRY_BYTES = 10 * MiB;

export interface MemoryRow extends Row {
  max_bytes: number;
  cache_bytes: number;
  cache_entries: number;
  /** The mirror's RSS once started, before the fill. */
  rss_idle_mb: number;
  rss_mb: number;
  peak_rss_mb: number;
  rss_limit_mb: number;
  rss_within_limit: boolean;
}

async function cacheStats(mirror: BenchServer): Promise<{ bytes: number; entries: number }> {
  const text = await (await fetch(`${mirror.url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { bytes: value('github_mirror_cache_size'), entries: value('github_mirror_cached_objects') };
}

export async function measureMemoryFill(fleet: ServerFleet, upstream: BenchServer, maxBytes: number, connections: number): Promise<MemoryRow> {
  const mirror = await fleet.start(
    'memory-filled',
    'mirror',
    upstream.url,
    `MIRROR_CACHE_MEMORY_MAX_BYTES=${maxBytes}`,
    `MIRROR_CACHE_MAX_ENTRY_BYTES=${Math.min(maxBytes, DEFAULT_MAX_ENTRY_BYTES)}`,
  );
  const idle = await mirror.usage();
  const headers = { accept: BENCH_ACCEPT };
  // the fill's misses spread over DISTINCT_TOKENS credentials in turn, as many clients would fill a
  // cache: one token alone would be held to the upstream governor's budget (points per minute per
  // credential), and the fill would take an hour
  const tokens = distinctTokens(DISTINCT_TOKENS);
  let next = 0;
  const items = (count: number) =>
    Array.from({ length: count }, () => {
      const n = next++;
      return { path: `${ITEM_PREFIX}${n}`, headers: { authorization: tokens[n % tokens.length] as string } };
    });
  // a probe tells the size the cache counts per entry, so the fill knows how many it takes
  const probe = 200;
  await runLoad({ url: mirror.url, connections, durationMs: 60_000, headers, variants: items(probe), maxRequests: probe });
  const probed = await cacheStats(mirror);
  const perEntry = probed.entries > 0 ? probed.bytes / probed.entries : 4096;
  const count = Math.ceil(((maxBytes - probed.bytes) / perEntry) * 1.05);
  process.stderr.write(`  memory-filled: ${count} distinct resources of ~${Math.round(perEntry)} B into ${maxBytes} B\n`);

  const [server0, upstream0] = await Promise.all([mirror.usage(), upstream.usage()]);
  const result = await runLoad({ url: mirror.url, connections, durationMs: 3_600_000, headers, variants: items(count), maxRequests: count });
  const [server1, upstream1] = await Promise.all([mirror.usage(), upstream.usage()]);
  const filled = await cacheStats(mirror);

  const limit = 1.5 * maxBytes + 80 * MiB;
  const mb = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
  return {
    scenario: 'memory-filled',
    rps: result.rps,
    p50_ms: result.p50_ms,
    p90_ms: result.p90_ms,
    p99_ms: result.p99_ms,
    errors: result.errors,
    non2xx: result.non2xx,
    cpu_us_per_req: Math.round(((server1.cpuUs - server0.cpuUs) / result.requests) * 10) / 10,
    upstream_per_req: Math.round((((upstream1.requests ?? 0) - (upstream0.requests ?? 0)) / result.requests) * 1000) / 1000,
    max_bytes: maxBytes,
    cache_bytes: filled.bytes,
    cache_entries: filled.entries,
    rss_idle_mb: mb(idle.rssBytes),
    rss_mb: mb(server1.rssBytes),
    peak_rss_mb: mb(server1.maxRssBytes),
    rss_limit_mb: mb(limit),
    rss_within_limit: server1.maxRssBytes <= limit,
  };
}
