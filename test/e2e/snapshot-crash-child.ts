/**
 * Child process of snapshot-crash.test.ts: fills a memory cache with incompressible entries, then
 * writes a snapshot of it into the store the MIRROR_SNAPSHOT_* variables configure, printing
 * "progress <entries>" as it goes, until the parent kills it with SIGKILL.
 * CRASH_ENTRIES: entries (default 40,000 of 4 KiB); CRASH_BATCH_DELAY_MS: a pause per batch, as a
 * slower cache (Redis across a network) would impose.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/app/config/index.js';
import { buildSnapshotStore } from '../../src/app/wiring/snapshots.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { MemoryCacheDump } from '../../src/adapters/snapshot/memory-cache-dump.adapter.js';
import { TakeSnapshot } from '../../src/domain/use-cases/take-snapshot.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';
import type { DumpedEntry } from '../../src/domain/ports/cache-dump.port.js';

const config = loadConfig({ env: process.env, args: [] });
const store = buildSnapshotStore(config);
if (store === undefined) throw new Error('no snapshot store configured');
const count = Number(process.env.CRASH_ENTRIES ?? 40_000);
const delayMs = Number(process.env.CRASH_BATCH_DELAY_MS ?? 0);
const cache = new MemoryCache({ maxBytes: 2 * 1024 * 1024 * 1024 });
for (let i = 0; i < count; i++) {
  cache.set(`crash:${i.toString(16).padStart(40, '0')}`, { status: 200, headers: { etag: `"${i}"` }, body: randomBytes(4096), etag: `"${i}"`, storedAt: 1, validatedAt: 1 }, 3600);
}

class SlowDump extends MemoryCacheDump {
  override async *entries(): AsyncGenerator<DumpedEntry[]> {
    for await (const batch of super.entries()) {
      if (delayMs > 0) await sleep(delayMs);
      yield batch;
    }
  }
}

const take = new TakeSnapshot(new SlowDump(cache, { batchEntries: 64 }), store, { emit: () => undefined }, systemClock, { retain: 100 });
process.stdout.write('filled\n');
const result = await take.execute({ onProgress: (p) => process.stdout.write(`progress ${p.entries}\n`) });
process.stdout.write(`done ${result.outcome}\n`);
store.close();
