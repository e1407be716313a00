/**
 * The near cache: a bounded in-process copy of what Redis lookups returned, by full Redis key name,
 * kept correct by Redis' invalidation messages (server-assisted client-side caching; the connections
 * are near-cache-tracking.ts'). Pure: no Redis here, so the races can be tested deterministically.
 *
 * - Served only while armed (tracking known to be on and its invalidations known to reach this
 *   process); arming and disarming drop everything.
 * - A read that may fill it takes a ticket before it is sent (`begin`). An invalidation of its key (or
 *   of the other key its value depends on, a shared body) that arrives before its reply — the
 *   invalidation comes on another connection and may overtake the reply — voids the ticket: the
 *   result is returned to the caller but not kept. So is every ticket taken before a flush or a disarm.
 * - A copy never outlives the Redis key: it expires at the time the read was sent plus the PTTL the
 *   read returned (a key without expiry: only invalidations end it).
 * - Bounded by bytes (the value's size as the caller gives it plus the names); the oldest go first,
 *   except that an entry hit since it was last considered gets a second chance (CLOCK, no reordering
 *   of the map on a hit).
 * - The seal key a value was opened with is kept with it: a lookup with another key finds nothing.
 */

interface Held<T> {
  value: T;
  sealKey: Uint8Array | undefined;
  size: number;
  /** Epoch ms (the clock given), Infinity without expiry. */
  expiresAt: number;
  /** The other key the value was read from (a shared body), if any. */
  depends: string | undefined;
  /** Hit since eviction last passed it. */
  hot: boolean;
}

/** What a copy costs beyond its value and names (the map entry, the record). */
const ENTRY_OVERHEAD = 160;
/** Names invalidated while reads are in flight, kept to check their tickets; past this many, every ticket in flight is voided. */
const RECENT_MAX = 4096;

export interface NearCacheCounters {
  /** Lookups answered from the near cache. */
  hits: number;
  /** Values kept after a read. */
  fills: number;
  /** Reads whose result was not kept because an invalidation (or a flush) came before their reply. */
  voided: number;
  /** Invalidated key names received (and own writes). */
  invalidations: number;
  /** Times everything was dropped (flush message, disarm, arm). */
  flushes: number;
  /** Copies dropped to stay under the bound. */
  evictions: number;
}

export class NearCache<T> {
  private readonly entries = new Map<string, Held<T>>();
  /** Key name of a shared body → the entries that hold it. */
  private readonly dependents = new Map<string, Set<string>>();
  /** Invalidation sequence: bumped on every invalidation and flush. */
  private seq = 0;
  /** Tickets below this are void (taken before the last flush or overflow of `recent`). */
  private floor = 0;
  /** Names invalidated while reads were in flight → the seq of their last invalidation. */
  private readonly recent = new Map<string, number>();
  private inFlight = 0;
  private bytes = 0;
  private armed = false;
  readonly counters: NearCacheCounters = { hits: 0, fills: 0, voided: 0, invalidations: 0, flushes: 0, evictions: 0 };

  /** `maxBytes` in all; a single value larger than a sixteenth of it is not kept. */
  constructor(
    private readonly maxBytes: number,
    private readonly now: () => number,
  ) {}

  get isArmed(): boolean {
    return this.armed;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  /** The copy of `name` opened with `sealKey`, while armed and not expired. */
  get(name: string, sealKey: Uint8Array | undefined): T | undefined {
    if (!this.armed) return undefined;
    const held = this.entries.get(name);
    if (held === undefined || !sameKey(held.sealKey, sealKey)) return undefined;
    if (held.expiresAt <= this.now()) {
      this.drop(name);
      return undefined;
    }
    held.hot = true;
    this.counters.hits += 1;
    return held.value;
  }

  /** Before a read that may fill the cache is sent: its ticket, or -1 when not armed (nothing will be kept). Always `settle` it. */
  begin(): number {
    if (!this.armed) return -1;
    this.inFlight += 1;
    return this.seq;
  }

  /**
   * Keeps what the read of `ticket` returned for `name` (and `depends`, the other key it read), unless
   * an invalidation of either, a flush or a disarm came since the ticket was taken. `sentAt`: the
   * clock's time before the read was sent; `ttlMs`: the PTTL it returned (-1 = no expiry).
   */
  keep(ticket: number, name: string, sealKey: Uint8Array | undefined, value: T, valueBytes: number, sentAt: number, ttlMs: number, depends?: string): void {
    if (ticket < 0) return;
    if (!this.armed || ticket < this.floor || (this.recent.get(name) ?? -1) > ticket || (depends !== undefined && (this.recent.get(depends) ?? -1) > ticket)) {
      this.counters.voided += 1;
      return;
    }
    if (ttlMs === -2 || (ttlMs >= 0 && ttlMs < 1)) return;
    const size = valueBytes + name.length + (depends?.length ?? 0) + ENTRY_OVERHEAD;
    this.drop(name);
    if (size > this.maxBytes / 16) return;
    this.entries.set(name, { value, sealKey, size, expiresAt: ttlMs < 0 ? Infinity : sentAt + ttlMs, depends, hot: false });
    this.bytes += size;
    if (depends !== undefined) {
      let set = this.dependents.get(depends);
      if (set === undefined) {
        set = new Set();
        this.dependents.set(depends, set);
      }
      set.add(name);
    }
    this.counters.fills += 1;
    if (this.bytes > this.maxBytes) this.evict();
  }

  /** The read of `ticket` is over (kept, not kept, or failed). */
  settle(ticket: number): void {
    if (ticket < 0) return;
    this.inFlight -= 1;
    if (this.inFlight <= 0) {
      this.inFlight = 0;
      this.recent.clear();
    }
  }

  /** `name` changed in Redis (an invalidation message, or a write of this process): drop its copy and the copies that read it. */
  invalidate(name: string): void {
    this.seq += 1;
    this.counters.invalidations += 1;
    if (this.inFlight > 0) {
      if (this.recent.size >= RECENT_MAX) {
        this.recent.clear();
        this.floor = this.seq;
      } else {
        this.recent.set(name, this.seq);
      }
    }
    this.drop(name);
    const set = this.dependents.get(name);
    if (set !== undefined) for (const entry of [...set]) this.drop(entry);
  }

  /** Everything may have changed (FLUSHALL/FLUSHDB, a lost connection): drop all, void every read in flight. */
  flush(): void {
    this.seq += 1;
    this.floor = this.seq;
    this.recent.clear();
    if (this.entries.size > 0) this.counters.flushes += 1;
    this.entries.clear();
    this.dependents.clear();
    this.bytes = 0;
  }

  /** Tracking is on and its invalidations reach this process: serve and fill from now on. */
  arm(): void {
    this.flush();
    this.armed = true;
  }

  /** Certainty lost: drop everything and stop serving until armed again. */
  disarm(): void {
    this.armed = false;
    this.flush();
  }

  private drop(name: string): void {
    const held = this.entries.get(name);
    if (held === undefined) return;
    this.entries.delete(name);
    this.bytes -= held.size;
    if (held.depends !== undefined) {
      const set = this.dependents.get(held.depends);
      if (set !== undefined) {
        set.delete(name);
        if (set.size === 0) this.dependents.delete(held.depends);
      }
    }
  }

  private evict(): void {
    // CLOCK: the oldest go first; one hit since the last pass buys a copy one more round
    let passes = 0;
    while (this.bytes > this.maxBytes && this.entries.size > 0 && passes < 2 * this.entries.size + 2) {
      passes += 1;
      const oldest = this.entries.keys().next().value as string;
      const held = this.entries.get(oldest) as Held<T>;
      if (held.hot) {
        held.hot = false;
        this.entries.delete(oldest);
        this.entries.set(oldest, held);
        continue;
      }
      this.drop(oldest);
      this.counters.evictions += 1;
    }
  }
}

function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
