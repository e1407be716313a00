/**
 * The `storage` part of /readyz (issue 16): whether bodies are shared across credentials, and how many
 * credentials' entries and shared bodies the cache holds. The memory cache tells at once; Redis is
 * only asked at /metrics scrapes (a sample of its keys), so /readyz shows the last figures seen and
 * their age instead of querying Redis on every readiness probe.
 */
import type { CacheStats } from '../../domain/ports/cache.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { MemoryCache } from '../../adapters/cache/memory/memory-cache.adapter.js';

export interface StorageReport {
  shareAcrossCredentials: boolean;
  /** Credentials' entries and the bodies they share (absent until known, or without the shared layout). */
  entries?: number;
  bodies?: number;
  /** Redis: estimated from a sample of keys at the last /metrics scrape, that many seconds ago. */
  estimated?: boolean;
  measuredSecondsAgo?: number;
}

/** Wraps a stats reader so the last answer stays available to synchronous readers. */
export function rememberingStats(
  read: (() => Promise<CacheStats>) | undefined,
  clock: ClockPort,
): { read: (() => Promise<CacheStats>) | undefined; last: () => { stats: CacheStats; at: number } | undefined } {
  let last: { stats: CacheStats; at: number } | undefined;
  if (read === undefined) return { read, last: () => last };
  return {
    read: async () => {
      const stats = await read();
      last = { stats, at: clock.now() };
      return stats;
    },
    last: () => last,
  };
}

export function storageReport(
  share: boolean,
  memory: MemoryCache | undefined,
  last: () => { stats: CacheStats; at: number } | undefined,
  clock: ClockPort,
): StorageReport {
  const report: StorageReport = { shareAcrossCredentials: share };
  if (!share) return report;
  if (memory !== undefined && memory.bodies !== undefined) {
    report.entries = memory.size;
    report.bodies = memory.bodies.count;
    return report;
  }
  const seen = last();
  if (seen?.stats.layout !== undefined) {
    report.entries = seen.stats.layout.entries;
    report.bodies = seen.stats.layout.bodies;
    report.estimated = seen.stats.layout.estimated;
    report.measuredSecondsAgo = Math.round((clock.now() - seen.at) / 1000);
  }
  return report;
}
