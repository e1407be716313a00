/**
 * Cross-replica coalescing of cold misses, a collaborator of ResolveResource: with a lease shared by
 * every replica (Redis), the replica that takes a key's flight lease calls upstream; the others wait
 * for its entry instead of spending quota on the same resource. Time only through ClockPort: the
 * poll is clock.sleep, the lease is kept by holdLease while the winner's call runs.
 */
import type { CachedEntry } from '../model.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { LeasePort } from '../ports/lease.port.js';
import { holdLease } from './hold-lease.js';

export interface CrossReplicaCoalescingOptions {
  /** How long a waiting replica waits for the winner's entry before calling upstream itself (0 = off). */
  waitMs: number;
  /** How often a waiting replica looks for the winner's entry (default 20 ms). */
  pollMs?: number;
}

/** What coalescing needs from the caller for one key. */
export interface Flight<T> {
  /** The key's entry in the shared cache, if any (never throws: a cache failure is a miss). */
  lookup(): Promise<CachedEntry | undefined>;
  /** Call upstream, revalidating `entry` when there is one. */
  fetch(entry: CachedEntry | undefined): Promise<T>;
  /** Serve the entry another replica fetched while this one waited. */
  share(entry: CachedEntry): T;
}

export class CrossReplicaCoalescing {
  private readonly pollMs: number;

  constructor(
    private readonly flights: LeasePort,
    private readonly clock: ClockPort,
    private readonly options: CrossReplicaCoalescingOptions,
  ) {
    this.pollMs = options.pollMs ?? 20;
  }

  /** Whether there is anyone to coalesce with: the lease is shared (Redis in use) and waiting is on. */
  get active(): boolean {
    return this.flights.shared && this.options.waitMs > 0;
  }

  /**
   * A cold miss: one replica per key calls upstream (it holds the key's flight lease); the others
   * wait for its entry. Any trouble with the lease, or a winner that takes too long, means calling
   * upstream ourselves.
   */
  async coalesce<T>(key: string, flight: Flight<T>): Promise<T> {
    const waitMs = this.options.waitMs;
    const name = `flight:${key}`;
    const waitingSince = this.clock.now();
    // keep the lease while our call runs: a winner that is slow, not gone, must not see its key
    // handed to a second caller when the lease's ttl runs out (a gone one stops renewing).
    // Look again under the lease: a winner may have stored the entry and released it between our
    // first lookup and now. Validated since we began to wait: the winner's answer, served as is;
    // older: the call is a (free) revalidation, not a second fetch
    const lead = (): Promise<T> =>
      holdLease(this.flights, this.clock, name, waitMs, async () => {
        const entry = await flight.lookup();
        if (entry !== undefined && entry.validatedAt >= waitingSince) return flight.share(entry);
        return flight.fetch(entry);
      });
    const acquire = async (): Promise<boolean> => {
      try {
        return await this.flights.acquire(name, waitMs);
      } catch {
        return true; // no lease to be had: behave as a lone replica
      }
    };
    if (await acquire()) return lead();
    for (let polls = Math.ceil(waitMs / this.pollMs); polls > 0; polls--) {
      await this.clock.sleep(this.pollMs);
      const entry = await flight.lookup();
      if (entry !== undefined) return flight.share(entry);
      // the winner finished without leaving an entry (an error, a 404, not cacheable): our turn
      if (await acquire()) return lead();
    }
    return flight.fetch(await flight.lookup());
  }
}
