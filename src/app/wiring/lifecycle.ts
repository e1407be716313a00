/** What the composition root hands Mirror to open and close: a part's connections, timers, servers. */
export interface Lifecycle {
  /** Opens connections; never throws for a dependency that may come later (Redis). */
  start(): Promise<void>;
  close(): Promise<void>;
}

export const NO_LIFECYCLE: Lifecycle = { start: () => Promise.resolve(), close: () => Promise.resolve() };
