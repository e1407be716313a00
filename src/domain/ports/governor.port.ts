/**
 * The upstream governor (DESIGN §3, issue 15): GitHub's secondary rate limits, per credential and shared
 * by every replica. Before a call leaves for GitHub it asks for a turn: at most so many calls in flight
 * for the credential, at most so many points a minute, writes spaced apart, and nothing at all while
 * GitHub has asked the credential to wait (a hold). Only calls that reach GitHub take a turn: a fresh
 * hit or a coalesced request never asks.
 */

/** One upstream call, as the governor counts it. */
export interface GovernedCall {
  /** The credential's partition (KeyHasherPort.partitionOf): a keyed hash, never the credential. */
  partition: string;
  /** GitHub's points for the call: 1 for GET, HEAD and OPTIONS, 5 for the other methods. */
  points: number;
  /** Methods other than GET, HEAD and OPTIONS: spaced at least the write spacing apart. */
  write: boolean;
}

/** A turn: held while the call runs, given back once it is over. */
export interface GovernorPermit {
  /**
   * The call is over (answer read, or failed): its concurrency slot is freed. `sent: false` = it never
   * reached GitHub (e.g. the upstream breaker was open), so its points are given back. Idempotent.
   */
  release(sent: boolean): void;
}

export type Admission =
  /** Go ahead; release the permit when the call is over. */
  | { kind: 'admitted'; permit: GovernorPermit; waitedMs: number }
  /** GitHub asked this credential to wait: send nothing, tell the client how long is left. */
  | { kind: 'held'; retryAfterMs: number }
  /** The call waited the longest it may without getting a turn. */
  | { kind: 'refused'; retryAfterMs: number; waitedMs: number };

export interface GovernorPort {
  /** Waits (first come, first served per credential) for a turn, up to the configured longest wait. Never rejects. */
  acquire(call: GovernedCall): Promise<Admission>;
  /**
   * The answer at once, when it can be given without waiting or any I/O (the counters are in this
   * process, or a lease of them is): admitted or held. Undefined = ask `acquire` (someone of the
   * credential waits, the call is over budget, or the counters are elsewhere). Optional; never throws.
   * The hit path's upstream call then costs no promise and no turn of the event loop for its turn.
   */
  admitNow?(call: GovernedCall): Admission | undefined;
  /** GitHub said wait: no call for this credential leaves, on any replica, for `ms` from now. Never rejects. */
  hold(partition: string, ms: number): Promise<void>;
  /** Answers every call still waiting (refused) and stops the governor's timers. */
  close(): Promise<void>;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** GitHub's secondary-limit cost of a call and whether it is a write. */
export function governedCall(partition: string, method: string): GovernedCall {
  const read = READ_METHODS.has(method.toUpperCase());
  return { partition, points: read ? 1 : 5, write: !read };
}
