/**
 * A named lease with an expiry, so that one replica at a time does a piece of work (a snapshot per
 * interval, a restore). A lease that is not renewed expires on its own: a replica that dies holding
 * one blocks the others for at most its ttl.
 */
export interface LeasePort {
  /** True when the lease is shared by every replica (Redis); false when it only covers this process. */
  readonly shared: boolean;
  /** Takes the lease for `ttlMs` when nobody holds it; true when this replica holds it now. */
  acquire(name: string, ttlMs: number): Promise<boolean>;
  /** Extends a lease this replica holds; false when it has expired or someone else holds it. */
  renew(name: string, ttlMs: number): Promise<boolean>;
  /** Gives up a lease this replica holds (a lease held by someone else is left alone). */
  release(name: string): Promise<void>;
}
