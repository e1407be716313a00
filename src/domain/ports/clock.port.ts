/**
 * Time, as the domain sees it: what time it is, waiting, and repeating work. The domain never touches
 * the runtime's timers itself (no setTimeout in src/domain), so a use case runs on a fake clock in
 * its unit tests. The system implementation lives in src/adapters/clock/.
 */

/** Stops a repeating task; calling it again does nothing. */
export type Cancel = () => void;

export interface ClockPort {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** Runs `task` every `ms` milliseconds until cancelled. Never keeps the process alive on its own. */
  every(ms: number, task: () => void): Cancel;
}
