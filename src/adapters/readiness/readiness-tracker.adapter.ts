/** Readiness as the events tell it: breaker states, upstream health, restore progress (for /readyz). */
import { EventName, type BreakerChangedEvent, type DomainEventName, type SnapshotEvent, type UpstreamCalledEvent } from '../../domain/events/events.js';
import type { DomainEventListener, EventSubscriber } from '../events/eventemitter2-bus.adapter.js';

export type UpstreamState = 'unknown' | 'ok' | 'erroring' | 'timeout' | 'unreachable' | 'offline';

export interface UpstreamStatus {
  /** From the last call: ok (an answer below 500), erroring (5xx), timeout, unreachable, offline (breaker open). */
  state: UpstreamState;
  lastStatus?: number;
  lastCallSecondsAgo?: number;
  /** Seconds since GitHub last answered below 500. */
  lastOkSecondsAgo?: number;
  /** Failed calls (5xx, timeout, unreachable, offline) since the last good one. */
  consecutiveFailures: number;
}

export interface RestoreStatus {
  /** none until a restore starts; in_progress while entries load; then its outcome. */
  state: 'none' | 'in_progress' | 'ok' | 'failed' | 'skipped' | 'corrupt';
  store?: string;
  /** Entries read from the snapshot so far, and how many it holds. */
  entries?: number;
  total?: number;
  /** Entries written into the cache (others had expired or were already there). */
  restored?: number;
  bytes?: number;
  durationSeconds?: number;
  finishedSecondsAgo?: number;
  reason?: string;
}

/**
 * What /readyz shows about the parts that report through events: breaker states, the upstream's last
 * answers, restore progress, the backend last switched to. Listens to the bus; holds only the latest state.
 */
export class ReadinessTracker {
  private readonly unsubscribe: Array<() => void> = [];
  private readonly breakerStates = new Map<string, BreakerChangedEvent['state']>();
  private upstreamState: UpstreamState = 'unknown';
  private lastStatus: number | undefined;
  private lastCallAt: number | undefined;
  private lastOkAt: number | undefined;
  private failures = 0;
  private restoreState: RestoreStatus = { state: 'none' };
  private restoreFinishedAt: number | undefined;
  private backendName: string | undefined;

  constructor(
    bus: EventSubscriber,
    private readonly now: () => number = Date.now,
    /** Breakers that can tell their state now: reported from the first check on, not from their first change. */
    private readonly breakerSources: Readonly<Record<string, () => BreakerChangedEvent['state']>> = {},
  ) {
    const on = <N extends DomainEventName>(name: N, listener: DomainEventListener<N>) => this.unsubscribe.push(bus.on(name, listener));
    on(EventName.breakerChanged, (event) => {
      const e = event;
      if (this.breakerStates.has(e.breaker) || this.breakerStates.size < 16) this.breakerStates.set(e.breaker, e.state);
    });
    on(EventName.upstreamCalled, (event) => this.onUpstream(event));
    on(EventName.backendChanged, (event) => {
      this.backendName = event.backend;
    });
    on(EventName.restoreProgress, (event) => {
      this.restoreState = restoreStatus('in_progress', event);
      this.restoreFinishedAt = undefined;
    });
    on(EventName.restoreCompleted, (event) => {
      const e = event;
      this.restoreState = restoreStatus(e.outcome === 'in_progress' ? 'ok' : e.outcome, e);
      this.restoreFinishedAt = this.now();
    });
  }

  breakers(): Record<string, string> {
    const states: Record<string, string> = Object.fromEntries(this.breakerStates);
    for (const [name, state] of Object.entries(this.breakerSources)) states[name] = state();
    return states;
  }

  upstream(): UpstreamStatus {
    const now = this.now();
    const status: UpstreamStatus = { state: this.upstreamState, consecutiveFailures: this.failures };
    if (this.lastStatus !== undefined) status.lastStatus = this.lastStatus;
    if (this.lastCallAt !== undefined) status.lastCallSecondsAgo = round((now - this.lastCallAt) / 1000);
    if (this.lastOkAt !== undefined) status.lastOkSecondsAgo = round((now - this.lastOkAt) / 1000);
    return status;
  }

  restore(): RestoreStatus {
    if (this.restoreFinishedAt === undefined) return { ...this.restoreState };
    return { ...this.restoreState, finishedSecondsAgo: round((this.now() - this.restoreFinishedAt) / 1000) };
  }

  /** The backend named by the last cache.backend_changed event, if any. */
  backend(): string | undefined {
    return this.backendName;
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private onUpstream(e: UpstreamCalledEvent): void {
    // kept back by the mirror's own governor: nothing was sent, so nothing was learnt about GitHub
    if (e.result === 'refused') return;
    const now = this.now();
    this.lastCallAt = now;
    if (e.result === 'body_too_large') {
      // GitHub answered, with a body over upstream.maxBodyBytes: it is up.
      this.upstreamState = 'ok';
      this.lastOkAt = now;
      this.failures = 0;
      return;
    }
    if (e.result === 'ok') {
      this.lastStatus = e.status;
      if (e.status !== undefined && e.status >= 500) {
        this.upstreamState = 'erroring';
        this.failures++;
      } else {
        this.upstreamState = 'ok';
        this.lastOkAt = now;
        this.failures = 0;
      }
      return;
    }
    this.upstreamState = e.result === 'timeout' ? 'timeout' : e.result === 'offline' ? 'offline' : 'unreachable';
    this.failures++;
  }
}

function restoreStatus(state: RestoreStatus['state'], e: SnapshotEvent): RestoreStatus {
  const status: RestoreStatus = { state, store: e.store, entries: e.entries, bytes: e.bytes, durationSeconds: round(e.durationMs / 1000) };
  if (e.total !== undefined) status.total = e.total;
  if (e.restored !== undefined) status.restored = e.restored;
  if (e.reason !== undefined && state !== 'ok') status.reason = e.reason.slice(0, 200);
  return status;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
