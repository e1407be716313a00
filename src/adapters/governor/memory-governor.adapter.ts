/**
 * GovernorPort for one process (the memory cache backend): the queue over the in-memory counters.
 */
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { GovernorLimits } from './governor-store.js';
import { MemoryGovernorStore } from './memory-governor-store.js';
import { QueuedGovernor } from './queued-governor.js';

export interface GovernorOptions extends GovernorLimits {
  /** Longest a call waits for its turn before GOVERNOR_WAIT_EXCEEDED. */
  maxWaitMs: number;
  clock: ClockPort;
  events?: EventBusPort;
  /** A slot not given back after this long lapses (default 60 s): a lost permit never blocks for good. */
  slotTtlMs?: number;
  /** Most credentials with counters or holds (default 10 000). */
  maxCredentials?: number;
  /** Retry period of a waiting call when the counters cannot tell when a turn comes (default 25 ms). */
  pollMs?: number;
  /** Redis only (leases of reads); ignored in memory. */
  leaseMs?: number;
}

export class MemoryGovernor extends QueuedGovernor {
  readonly store: MemoryGovernorStore;

  constructor(options: GovernorOptions) {
    const store = new MemoryGovernorStore({ limits: limitsOf(options), clock: options.clock, ...optional(options) });
    super(store, options.clock, queueOptions(options));
    this.store = store;
  }
}

export function limitsOf(options: GovernorLimits): GovernorLimits {
  return {
    enabled: options.enabled,
    maxConcurrent: options.maxConcurrent,
    pointsPerMinute: options.pointsPerMinute,
    writeSpacingMs: options.writeSpacingMs,
  };
}

export function optional(options: GovernorOptions): { slotTtlMs?: number; maxCredentials?: number } {
  return {
    ...(options.slotTtlMs === undefined ? {} : { slotTtlMs: options.slotTtlMs }),
    ...(options.maxCredentials === undefined ? {} : { maxCredentials: options.maxCredentials }),
  };
}

export function queueOptions(options: GovernorOptions): ConstructorParameters<typeof QueuedGovernor>[2] {
  return {
    maxWaitMs: options.maxWaitMs,
    ...(options.events === undefined ? {} : { events: options.events }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
  };
}
