/**
 * A shared lease that is only used while the cache breaker is closed: with Redis out of reach each
 * replica works on its own memory cache, and a lease would only add a failing round trip.
 */
import type { LeasePort } from '../../domain/ports/lease.port.js';

export class BreakerAwareLease implements LeasePort {
  constructor(
    private readonly inner: LeasePort,
    private readonly primaryInUse: () => boolean,
  ) {}

  get shared(): boolean {
    return this.inner.shared && this.primaryInUse();
  }

  acquire(name: string, ttlMs: number): Promise<boolean> {
    return this.primaryInUse() ? this.inner.acquire(name, ttlMs) : Promise.resolve(true);
  }

  renew(name: string, ttlMs: number): Promise<boolean> {
    return this.primaryInUse() ? this.inner.renew(name, ttlMs) : Promise.resolve(true);
  }

  release(name: string): Promise<void> {
    return this.primaryInUse() ? this.inner.release(name) : Promise.resolve();
  }
}
