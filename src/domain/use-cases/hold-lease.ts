/**
 * The one way the domain keeps a lease while work runs: renew it every third of its ttl through the
 * ClockPort, stop renewing when the work ends, then release it (or not). Used by cross-replica
 * coalescing, the snapshot schedule, the restore and the snapshot CLI.
 */
import type { ClockPort } from '../ports/clock.port.js';
import type { LeasePort } from '../ports/lease.port.js';

export interface HoldLeaseOptions<T> {
  /** Whether to give the lease up once the work is done (default: always). */
  release?: (result: T | undefined, failed: boolean) => boolean;
  /** A renewal found the lease expired or taken over (the work goes on; it may be done twice). */
  onLost?: () => void;
  /** A renewal failed (backend unreachable); the lease may expire under the work. */
  onRenewFailed?: (error: unknown) => void;
  /** Renewal period (default: a third of ttlMs, at least 10 ms). */
  renewEveryMs?: number;
}

/**
 * Runs `work` while holding `name`, which the caller has acquired for `ttlMs`: the lease is renewed
 * for `ttlMs` every third of it until the work settles. A replica that dies stops renewing, so the
 * lease expires at most `ttlMs` later.
 */
export async function holdLease<T>(
  lease: LeasePort,
  clock: ClockPort,
  name: string,
  ttlMs: number,
  work: () => Promise<T>,
  options: HoldLeaseOptions<T> = {},
): Promise<T> {
  const stop = clock.every(options.renewEveryMs ?? Math.max(10, Math.floor(ttlMs / 3)), () => {
    lease.renew(name, ttlMs).then(
      (kept) => {
        if (!kept) options.onLost?.();
      },
      (error: unknown) => options.onRenewFailed?.(error),
    );
  });
  let result: T | undefined;
  let failed = true;
  try {
    result = await work();
    failed = false;
    return result;
  } finally {
    stop();
    if (options.release?.(result, failed) ?? true) await lease.release(name).catch(() => undefined);
  }
}
