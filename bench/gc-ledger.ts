/**
 * What a bench server's JavaScript allocated and what its collector cost, counted from V8's own GC
 * records (`v8.GCProfiler`): bytes allocated on the heap since start (what each collection found in
 * use, less what the one before it left, plus what is in use since the last one) and main-thread
 * collection time. Unlike CPU time on these shared 2-core machines, the bytes a request allocates
 * hardly move from run to run, so a cut in allocation shows even where the CPU figures are noise.
 */
import { getHeapStatistics, GCProfiler } from 'node:v8';

interface GcRecord {
  cost: number;
  beforeGC: { heapStatistics: { usedHeapSize: number } };
  afterGC: { heapStatistics: { usedHeapSize: number } };
}

export class GcLedger {
  private profiler = new GCProfiler();
  private allocated = 0;
  private gcUs = 0;
  private collections = 0;
  private lastAfter = getHeapStatistics().used_heap_size;

  constructor() {
    this.profiler.start();
  }

  /** Totals since this ledger started: bytes allocated, main-thread GC µs, collections. */
  read(): { allocatedBytes: number; gcUs: number; collections: number } {
    const records = (this.profiler.stop() as unknown as { statistics: GcRecord[] } | undefined)?.statistics ?? [];
    this.profiler = new GCProfiler();
    this.profiler.start();
    for (const record of records) {
      this.allocated += Math.max(0, record.beforeGC.heapStatistics.usedHeapSize - this.lastAfter);
      this.lastAfter = record.afterGC.heapStatistics.usedHeapSize;
      this.gcUs += record.cost;
      this.collections++;
    }
    const since = Math.max(0, getHeapStatistics().used_heap_size - this.lastAfter);
    return { allocatedBytes: this.allocated + since, gcUs: this.gcUs, collections: this.collections };
  }
}
