/**
 * LeasePort for one process (the memory backend: every replica has its own cache, so each may snapshot
 * its own). It still keeps two runs of the same work from overlapping in this process.
 */
import type { LeasePort } from '../../domain/ports/lease.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import { systemClock } from '../clock/system-clock.adapter.js';

export class LocalLease implements LeasePort {
  readonly shared = false;
  private readonly held = new Map<string, number>();

  constructor(private readonly clock: ClockPort = systemClock) {}

  acquire(name: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const until = this.held.get(name);
    if (until !== undefined && until > now) return Promise.resolve(false);
    this.held.set(name, now + ttlMs);
    return Promise.resolve(true);
  }

  renew(name: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const until = this.held.get(name);
    if (until === undefined || until <= now) return Promise.resolve(false);
    this.held.set(name, now + ttlMs);
    return Promise.resolve(true);
  }

  release(name: string): Promise<void> {
    this.held.delete(name);
    return Promise.resolve();
  }
}
