export interface ClockPort {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: ClockPort = { now: () => Date.now() };
