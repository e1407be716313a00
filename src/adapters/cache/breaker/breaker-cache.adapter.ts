/**
 * A CachePort that puts a primary cache (Redis) and a fallback cache (the bounded memory cache)
 * behind one opossum circuit breaker named "cache".
 *
 * - Closed: lookups, stores and forgets go to the primary. A call that fails or times out is served
 *   by the fallback for that call (the client never sees the failure) and counts for the breaker.
 * - Open: every call goes to the fallback at once. After `resetTimeoutMs` the breaker is half-open
 *   and lets exactly one call probe the primary; success closes it, failure opens it again.
 * - A primary that reports readiness (RedisCache.isReady / onReadyChange) also drives the breaker:
 *   not ready at construction, it starts open (the event says `initial`: no warning on a normal
 *   start); losing its connection opens it; becoming ready closes it; while it says it is not ready the
 *   breaker stays open (no half-open probe). So the mirror starts on memory when Redis is
 *   unreachable and switches as soon as Redis appears.
 *
 * Memory is a fallback tier, never a copy: entries stored there during an outage stay there (LRU /
 * TTL) and are not copied back. Once closed, a lookup asks the primary first and the fallback only
 * when the primary has no entry; a store to the primary drops the fallback's copy of that key so
 * the fallback never holds a version older than the primary's. docs/redis.md says why.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { ErrorCode } from '../../../domain/errors.js';
import { EventName } from '../../../domain/events/events.js';
import type { BreakerChangedEvent, DomainEvent } from '../../../domain/events/events.js';
import type { CachedEntry, StoredRepresentation } from '../../../domain/model.js';
import type { CachePort, CacheStats, CacheStatsPort } from '../../../domain/ports/cache.port.js';
import type { ClockPort } from '../../../domain/ports/clock.port.js';
import { systemClock } from '../../clock/system-clock.adapter.js';
import type { EventBusPort } from '../../../domain/ports/event-bus.port.js';

/** What a primary may tell about its connection (RedisCache does). */
export interface ReadinessSource {
  isReady(): boolean;
  onReadyChange(listener: (ready: boolean) => void): () => void;
}

export interface BreakerCacheOptions {
  /** A primary call slower than this counts as failed and is served by the fallback. */
  timeoutMs: number;
  /** Failure percentage (of the calls in the rolling window) that opens the breaker. */
  errorThresholdPercentage: number;
  /** Calls in the rolling window before the percentage is considered. */
  volumeThreshold: number;
  /** Time open before one probe is let through (half-open). */
  resetTimeoutMs: number;
  /** Rolling statistics window. Default 10 s. */
  rollingCountTimeoutMs?: number;
  /** Breaker name in events. Default "cache". */
  name?: string;
  /** Receives breaker.changed, breaker.followed_primary, cache.backend_changed, cache.stats_failed and timeouts as cache.error. */
  events?: EventBusPort;
  clock?: ClockPort;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

interface Call {
  operation: 'lookup' | 'store' | 'forget' | 'representations';
  primary: () => Promise<unknown>;
  fallback: () => Promise<unknown>;
}

const PRIMARY = Symbol('primary');

function hasReadiness(cache: object): cache is ReadinessSource {
  const c = cache as Partial<ReadinessSource>;
  return typeof c.isReady === 'function' && typeof c.onReadyChange === 'function';
}

function hasStats(cache: object): cache is CacheStatsPort {
  return typeof (cache as Partial<CacheStatsPort>).stats === 'function';
}

export class BreakerCache implements CachePort, CacheStatsPort {
  private readonly breaker: CircuitBreaker<[Call], unknown>;
  private readonly name: string;
  private readonly clock: ClockPort;
  private readonly unsubscribe: (() => void) | undefined;
  /** Drives opossum's rolling window, so that a close can start it afresh. */
  private readonly buckets = new EventEmitter();
  private readonly bucketTimer: NodeJS.Timeout;
  private readonly bucketCount = 10;
  private state: BreakerState = 'closed';
  private activeBackend: string;
  private openedAt: number | undefined;
  private closed = false;
  /** The primary reports readiness (RedisCache): the breaker follows it. */
  private followsPrimary = false;
  /** Set while the constructor opens the breaker for a primary not connected yet. */
  private starting = false;
  private primaryReady: () => boolean = () => true;

  constructor(
    private readonly primary: CachePort,
    private readonly fallback: CachePort,
    private readonly options: BreakerCacheOptions,
  ) {
    for (const key of ['timeoutMs', 'resetTimeoutMs', 'volumeThreshold', 'errorThresholdPercentage'] as const) {
      if (!Number.isFinite(options[key]) || options[key] < 0) throw new RangeError(`BreakerCache: ${key} must be a number >= 0`);
    }
    this.name = options.name ?? 'cache';
    this.clock = options.clock ?? systemClock;
    this.activeBackend = primary.backend;
    const windowMs = options.rollingCountTimeoutMs ?? 10000;
    this.breaker = new CircuitBreaker<[Call], unknown>((call: Call) => call.primary(), {
      name: this.name,
      timeout: options.timeoutMs,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeoutMs,
      rollingCountTimeout: windowMs,
      rollingCountBuckets: this.bucketCount,
      rotateBucketController: this.buckets,
      // percentiles sort every latency of the window on each failure; snapshots tick a timer: neither is used
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    });
    this.bucketTimer = setInterval(() => this.buckets.emit('rotate'), Math.max(1, Math.floor(windowMs / this.bucketCount)));
    this.bucketTimer.unref();
    this.breaker.fallback((call: Call, _err: unknown) => call.fallback());
    this.breaker.on('open', () => this.transition('open'));
    this.breaker.on('halfOpen', () => {
      // a primary that says it is not connected needs no probe: stay open until it says it is ready
      // (else an idle mirror would sit half-open, and a probe would only fail again)
      if (this.followsPrimary && !this.primaryReady()) {
        this.breaker.open();
        return;
      }
      this.transition('half_open');
    });
    this.breaker.on('close', () => this.transition('closed'));
    // a primary call cut short by the timeout never reaches the primary's own error reporting (its
    // answer may still come, too late): count it here, it was served by the fallback
    // opossum passes (error, latency, args); its typings only declare the error
    const onTimeout = (_error: Error, _latency?: number, args?: unknown): void => {
      const call = Array.isArray(args) ? (args[0] as Call | undefined) : undefined;
      this.emit({
        name: EventName.cacheError,
        backend: this.primary.backend,
        operation: call?.operation ?? 'unknown',
        code: ErrorCode.BREAKER_TIMEOUT,
        message: `no answer within ${this.options.timeoutMs} ms; served by the ${this.fallback.backend} cache`,
      });
    };
    this.breaker.on('timeout', onTimeout);

    if (hasReadiness(primary)) {
      this.followsPrimary = true;
      this.primaryReady = () => primary.isReady();
      if (!primary.isReady()) {
        // usual at construction: the primary connects later (start()); it closes the breaker when
        // ready. The events say this open is the initial state, not an outage (no warning on a normal start).
        this.followed(false, true);
        this.starting = true;
        this.breaker.open();
        this.starting = false;
      }
      this.unsubscribe = primary.onReadyChange((ready) => this.onPrimaryReadiness(ready));
    }
  }

  /** The backend serving most calls now: the primary's when closed, the fallback's when open or half-open. */
  get backend(): string {
    return this.activeBackend;
  }

  get breakerState(): BreakerState {
    return this.state;
  }

  async lookup(key: string, sealKey?: Uint8Array, resourceKey?: string): Promise<CachedEntry | undefined> {
    const result = await this.breaker.fire({
      operation: 'lookup',
      primary: async () => ({ [PRIMARY]: true, entry: await this.primary.lookup(key, sealKey, resourceKey) }),
      fallback: async () => ({ [PRIMARY]: false, entry: await this.fallback.lookup(key, sealKey, resourceKey) }),
    });
    const { entry, [PRIMARY]: fromPrimary } = result as { [PRIMARY]: boolean; entry: CachedEntry | undefined };
    if (entry !== undefined || !fromPrimary) return entry;
    // the primary has none: an entry kept in memory during an outage still saves an upstream call
    return this.fallback.lookup(key, sealKey, resourceKey);
  }

  async store(key: string, entry: CachedEntry, ttlSeconds: number, sealKey?: Uint8Array, resourceKey?: string): Promise<void> {
    await this.breaker.fire({
      operation: 'store',
      primary: async () => {
        await this.primary.store(key, entry, ttlSeconds, sealKey, resourceKey);
        // the primary has the newest version now: the fallback must not keep an older one
        await this.fallback.forget(key, resourceKey);
      },
      fallback: () => this.fallback.store(key, entry, ttlSeconds, sealKey, resourceKey),
    });
  }

  async forget(key: string, resourceKey?: string): Promise<void> {
    await Promise.all([
      this.breaker.fire({ operation: 'forget', primary: () => this.primary.forget(key, resourceKey), fallback: () => Promise.resolve() }),
      this.fallback.forget(key, resourceKey),
    ]);
  }

  /** The primary's representations; the fallback's when it has none (bodies kept in memory during an outage). */
  async representations(resourceKey: string, limit: number): Promise<readonly StoredRepresentation[]> {
    const result = await this.breaker.fire({
      operation: 'representations',
      primary: async () => ({ [PRIMARY]: true, found: await this.primary.representations(resourceKey, limit) }),
      fallback: async () => ({ [PRIMARY]: false, found: await this.fallback.representations(resourceKey, limit) }),
    });
    const { found, [PRIMARY]: fromPrimary } = result as { [PRIMARY]: boolean; found: readonly StoredRepresentation[] };
    if (found.length > 0 || !fromPrimary) return found;
    return this.fallback.representations(resourceKey, limit);
  }

  /** Stats of the active backend (the fallback's when the primary cannot answer). */
  async stats(): Promise<CacheStats> {
    if (this.state === 'closed' && hasStats(this.primary)) {
      try {
        return await this.primary.stats();
      } catch (err) {
        this.emit({ name: EventName.cacheStatsFailed, breaker: this.name, backend: this.primary.backend, message: err instanceof Error ? err.message : String(err) });
      }
    }
    return hasStats(this.fallback) ? this.fallback.stats() : { entries: 0, bytes: 0 };
  }

  /** Shut the breaker down (its timers) and stop following the primary's readiness. Does not close the caches. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.bucketTimer);
    this.breaker.shutdown();
    return Promise.resolve();
  }

  private onPrimaryReadiness(ready: boolean): void {
    if (this.closed) return;
    if (ready && !this.breaker.closed) {
      this.followed(true, false);
      this.breaker.close();
    } else if (!ready && !this.breaker.opened) {
      this.followed(false, false);
      this.breaker.open();
    }
  }

  private followed(ready: boolean, initial: boolean): void {
    this.emit({ name: EventName.breakerFollowedPrimary, breaker: this.name, backend: this.primary.backend, ready, initial });
  }

  private transition(state: BreakerState): void {
    if (this.closed || state === this.state) return;
    const previous = this.state;
    this.state = state;
    const now = this.clock.now();
    const backend = state === 'closed' ? this.primary.backend : this.fallback.backend;
    const changed: BreakerChangedEvent = { name: EventName.breakerChanged, breaker: this.name, state, previous, backend };
    if (this.starting) changed.initial = true;
    if (state === 'open' && this.openedAt === undefined) this.openedAt = now;
    if (state === 'closed') {
      // opossum counts calls rejected while open as fires: left in the window they would dilute the
      // failure percentage for a while after recovery, and a new outage would not open the breaker
      for (let i = 0; i < this.bucketCount; i += 1) this.buckets.emit('rotate');
    }
    if (state === 'closed' && this.openedAt !== undefined) {
      changed.outageMs = now - this.openedAt;
      this.openedAt = undefined;
    }
    this.emit(changed);
    if (backend !== this.activeBackend) {
      this.activeBackend = backend;
      this.emit({ name: EventName.backendChanged, backend });
    }
  }

  private emit(event: DomainEvent): void {
    this.options.events?.emit(event);
  }
}
