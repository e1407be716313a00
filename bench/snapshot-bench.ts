/**
 * `npm run bench:snapshot`: snapshot and restore throughput for 100,000 entries of about 4 KB, with
 * the memory cache and with Redis (a local redis-server on a free port, when one is installed), into
 * the directory store. Reports entries/s, MB/s and the RSS growth of this process during each phase
 * (sampled every 10 ms), and writes bench/results/snapshot.json.
 *
 *   npm run bench:snapshot -- [--entries 100000] [--only memory,redis]
 *
 * Goal (issue 4): ≥ 20,000 entries/s both ways, RSS growth < 100 MB. A restore into the memory cache
 * grows the process by the cache itself; there the overhead beyond the bytes the cache holds counts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { MemoryCache } from '../src/adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump } from '../src/adapters/snapshot/memory-cache-dump.adapter.js';
import { BlobSnapshotStore } from '../src/adapters/snapshot/blob-snapshot-store.adapter.js';
import { FileBlobStore } from '../src/adapters/snapshot/file-blob-store.adapter.js';
import { RedisCacheDump } from '../src/adapters/cache/redis/redis-dump.adapter.js';
import { encodeEntry } from '../src/adapters/cache/entry-codec.js';
import { TakeSnapshot } from '../src/domain/use-cases/take-snapshot.js';
import { RestoreSnapshot } from '../src/domain/use-cases/restore-snapshot.js';
import { systemClock } from '../src/adapters/clock/system-clock.adapter.js';
import type { CacheDumpPort } from '../src/domain/ports/cache-dump.port.js';
import type { CachedEntry } from '../src/domain/model.js';
import { REDIS_SERVER_BIN, startRedis, type RedisProcess } from '../test/support/redis-harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] ? (process.argv[at + 1] as string) : fallback;
}

const ENTRIES = Number(arg('entries', '100000'));
const ONLY = arg('only', 'memory,redis').split(',');
const GOAL_ENTRIES_PER_SECOND = 20_000;
const GOAL_RSS_GROWTH_MB = 100;
const MB = 1024 * 1024;
const noEvents = { emit: () => undefined };

/** A GitHub-like JSON body of about 4 KB: a list of issues with ids, shas, URLs and some prose. */
function body(n: number): Buffer {
  const items: unknown[] = [];
  let text = '[]';
  for (let i = 0; text.length < 3900; i++) {
    items.push({
      id: n * 100 + i,
      number: i + 1,
      sha: randomBytes(20).toString('hex'),
      url: `https://api.github.com/repos/org-${n % 97}/repo-${n}/issues/${i + 1}`,
      title: `Issue ${i} of repository ${n}: ${randomBytes(6).toString('base64')}`,
      state: i % 3 === 0 ? 'closed' : 'open',
      labels: [{ name: 'bug' }, { name: `area-${i % 7}` }],
      comments: (n * 7 + i) % 41,
    });
    text = JSON.stringify(items);
  }
  return Buffer.from(text);
}

function entry(n: number): CachedEntry {
  const etag = `"${randomBytes(16).toString('hex')}"`;
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8', etag, 'x-github-media-type': 'github.v3; format=json', link: `<https://api.github.com/x?page=2>; rel="next"` },
    body: body(n),
    etag,
    storedAt: Date.now(),
    validatedAt: Date.now(),
  };
}

function key(n: number): string {
  return `${randomBytes(16).toString('hex')}:${n.toString(16).padStart(40, '0')}`;
}

interface PhaseResult {
  phase: string;
  entries: number;
  seconds: number;
  entriesPerSecond: number;
  /** Entry bytes (before the snapshot's compression) per second. */
  payloadMBPerSecond: number;
  /** Snapshot file bytes per second. */
  storedMBPerSecond: number;
  storedMB: number;
  rssBeforeMB: number;
  rssPeakMB: number;
  rssGrowthMB: number;
  /** RSS growth minus what the target cache holds more afterwards (memory restore). */
  overheadMB: number;
  meetsGoal: boolean;
}

function rssMB(): number {
  return process.memoryUsage.rss() / MB;
}

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function measure(phase: string, run: () => Promise<{ entries: number; payloadBytes: number; storedBytes: number; heldBytes?: number }>): Promise<PhaseResult> {
  collectGarbage();
  const before = rssMB();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMB());
  }, 10);
  const started = performance.now();
  const out = await run();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, rssMB());
  const growth = peak - before;
  const overhead = growth - (out.heldBytes ?? 0) / MB;
  const entriesPerSecond = out.entries / seconds;
  const result: PhaseResult = {
    phase,
    entries: out.entries,
    seconds: round(seconds, 3),
    entriesPerSecond: Math.round(entriesPerSecond),
    payloadMBPerSecond: round(out.payloadBytes / MB / seconds, 1),
    storedMBPerSecond: round(out.storedBytes / MB / seconds, 1),
    storedMB: round(out.storedBytes / MB, 1),
    rssBeforeMB: Math.round(before),
    rssPeakMB: Math.round(peak),
    rssGrowthMB: Math.round(growth),
    overheadMB: Math.round(overhead),
    meetsGoal: entriesPerSecond >= GOAL_ENTRIES_PER_SECOND && overhead < GOAL_RSS_GROWTH_MB,
  };
  console.error(
    `${phase.padEnd(16)} ${String(result.entries).padStart(7)} entries  ${result.seconds.toFixed(2).padStart(6)} s  ` +
      `${String(result.entriesPerSecond).padStart(7)} entries/s  ${String(result.payloadMBPerSecond).padStart(6)} MB/s  ` +
      `rss +${result.rssGrowthMB} MB (overhead ${result.overheadMB} MB)  ${result.meetsGoal ? 'ok' : 'BELOW GOAL'}`,
  );
  return result;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

async function snapshotPhase(phase: string, dump: CacheDumpPort, store: BlobSnapshotStore): Promise<PhaseResult> {
  let id = '';
  const result = await measure(phase, async () => {
    const outcome = await new TakeSnapshot(dump, store, noEvents, systemClock, { retain: 2 }).execute();
    if (outcome.outcome !== 'ok') throw new Error(`snapshot ${outcome.outcome}: ${outcome.reason}`);
    id = outcome.info.id;
    return { entries: outcome.info.entries, payloadBytes: outcome.payloadBytes, storedBytes: outcome.info.bytes };
  });
  return Object.assign(result, { snapshotId: id });
}

async function restorePhase(phase: string, dump: CacheDumpPort, store: BlobSnapshotStore, held?: () => number): Promise<PhaseResult> {
  const heldBefore = held?.() ?? 0;
  const stored = (await store.list())[0]?.bytes ?? 0;
  return measure(phase, async () => {
    const outcome = await new RestoreSnapshot(dump, store, noEvents, systemClock).execute();
    if (outcome.outcome !== 'ok') throw new Error(`restore ${outcome.outcome}: ${'reason' in outcome ? outcome.reason : ''}`);
    return { entries: outcome.restored, payloadBytes: outcome.payloadBytes, storedBytes: stored, heldBytes: (held?.() ?? 0) - heldBefore };
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mirror-snapshot-bench-'));
  const results: PhaseResult[] = [];
  let redis: RedisProcess | undefined;
  let client: Redis | undefined;
  try {
    const store = new BlobSnapshotStore(new FileBlobStore(dir));
    console.error(`building ${ENTRIES} entries of about 4 KB ...`);

    if (ONLY.includes('memory')) {
      const source = new MemoryCache({ maxBytes: 4 * 1024 * MB });
      for (let n = 0; n < ENTRIES; n++) source.set(key(n), entry(n), 3600);
      results.push(await snapshotPhase('memory snapshot', new MemoryCacheDump(source), store));
      source.clear();
      collectGarbage();
      const target = new MemoryCache({ maxBytes: 4 * 1024 * MB });
      results.push(await restorePhase('memory restore', new MemoryCacheDump(target), store, () => target.usedBytes));
      target.clear();
    }

    if (ONLY.includes('redis')) {
      if (!existsSync(REDIS_SERVER_BIN)) {
        console.error(`no ${REDIS_SERVER_BIN}: Redis phases skipped`);
      } else {
        redis = await startRedis();
        client = new Redis({ host: redis.host, port: redis.port, commandTimeout: 30_000 });
        const prefix = 'ghm:';
        // filled the way the mirror stores entries: entry-codec bytes (bodies brotli-compressed)
        for (let n = 0; n < ENTRIES; n += 500) {
          const pipeline = client.pipeline();
          for (let i = n; i < Math.min(ENTRIES, n + 500); i++) pipeline.set(prefix + key(i), encodeEntry(entry(i)), 'PX', 3_600_000);
          await pipeline.exec();
        }
        const dump = new RedisCacheDump({ client, keyPrefix: prefix });
        results.push(await snapshotPhase('redis snapshot', dump, store));
        await client.flushall();
        results.push(await restorePhase('redis restore', dump, store));
      }
    }
  } finally {
    client?.disconnect();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  }

  const report = {
    benchmark: 'snapshot',
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    entries: ENTRIES,
    approxEntryBytes: 4096,
    goal: { entriesPerSecond: GOAL_ENTRIES_PER_SECOND, rssGrowthMB: GOAL_RSS_GROWTH_MB },
    results,
  };
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(path.join(here, 'results', 'snapshot.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
  if (!results.every((r) => r.meetsGoal)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
