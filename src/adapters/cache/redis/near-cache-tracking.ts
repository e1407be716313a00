/**
 * Keeps a NearCache armed only while Redis is known to send it every invalidation: server-assisted
 * client-side caching in RESP2, i.e. `CLIENT TRACKING on REDIRECT <id>` on the connection that makes
 * the near cache's reads (`reads`), and a subscriber connection (`invalidations`, client `<id>`)
 * subscribed to `__redis__:invalidate`, whose messages carry the names of the keys `reads` read
 * that changed (null on FLUSHALL / FLUSHDB: everything).
 *
 * Arming: the subscriber's client id (CLIENT ID, before it subscribes), SUBSCRIBE, then CLIENT
 * TRACKING on `reads`, then a canary: `reads` reads a key of its own (`<prefix>__near:<nonce>:<n>`)
 * and writes it; only when the invalidation of that key comes back on the subscriber is the near
 * cache armed (the redirect reaches this subscriber on this server: after a failover a client id can
 * name another client; and, being a write, that `reads` is on a master). The canary is repeated every `checkEveryMs`; one that does not come back
 * within `checkTimeoutMs` disarms and reconnects the subscriber (a hung subscriber would otherwise
 * never tell).
 *
 * Disarmed (everything dropped, nothing served) when either connection closes or becomes ready
 * again (a reconnected `reads` has lost its tracking; a reconnected subscriber has a new id), and
 * armed again as above. A command Redis refuses (an ACL without `subscribe`, the channel, or
 * `client|tracking`) keeps it off and is tried again every 30 s, without reconnecting. Nothing here
 * logs; `cache.near_cache` events say when it arms, disarms, or is refused.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { EventName, type CacheNearCacheEvent } from '../../../domain/events/events.js';
import type { EventBusPort } from '../../../domain/ports/event-bus.port.js';
import type { NearCache } from './near-cache.js';

export const INVALIDATION_CHANNEL = '__redis__:invalidate';

/** After Redis refused a command the near cache needs (an ACL), it is asked again this much later. */
const REFUSED_RETRY_MS = 30_000;

/**
 * Redis answered with an error (NOPERM, unknown command...): retrying at once would get the same
 * answer. Not READONLY: the canary's write reached a replica (a failover under way; the connection
 * reconnects on READONLY, and the near cache stays off until it is back on the master).
 */
function isRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError' && !err.message.startsWith('READONLY');
}

export interface NearCacheTrackingOptions {
  /** The connection whose reads are tracked (lookups that may fill the near cache go there). */
  reads: Redis;
  /** The subscriber connection that receives the invalidations. */
  invalidations: Redis;
  near: NearCache<unknown>;
  /** The key prefix: the canary is `<prefix>__near:<nonce>:<n>`. */
  prefix: string;
  /** How often the canary checks that invalidations still arrive. Default 2000 ms. */
  checkEveryMs?: number;
  /** How long a canary's invalidation may take. */
  checkTimeoutMs: number;
  /** Time before another attempt after a failed arming. Default 1000 ms. */
  retryMs?: number;
  events?: EventBusPort;
  endpoint: string;
}

type Reason = CacheNearCacheEvent['reason'];

export class NearCacheTracking {
  /** Bumped by every loss of certainty: an arming started before it does not complete. */
  private armGeneration = 0;
  /** Bumped when the subscriber closes or is ready again. */
  private subscriberGeneration = 0;
  private subscriberId: number | undefined;
  private closed = false;
  private readonly nonce = randomBytes(8).toString('hex');
  private canaries = 0;
  /** Armings in a row whose canary did not come back: the third reconnects the subscriber. */
  private failedArms = 0;
  private canary: { name: string; seen: () => void } | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly detach: Array<() => void> = [];
  /** Asks the subscriber's setup again after Redis refused it. */
  private subscriberRetry: NodeJS.Timeout | undefined;
  /** The last refusal told (one event per different message). */
  private refusal: string | undefined;

  constructor(private readonly options: NearCacheTrackingOptions) {
    const { reads, invalidations } = options;
    this.on(reads, 'ready', () => this.restart('reads_ready'));
    this.on(reads, 'close', () => this.lost('reads_lost'));
    this.on(invalidations, 'ready', () => void this.subscriberReady());
    this.on(invalidations, 'close', () => {
      this.subscriberGeneration += 1;
      clearTimeout(this.subscriberRetry);
      this.subscriberId = undefined;
      this.lost('invalidations_lost');
    });
    this.on(invalidations, 'messageBuffer', (_channel: unknown, message: unknown) => this.received(message));
  }

  get isArmed(): boolean {
    return this.options.near.isArmed;
  }

  close(): void {
    this.closed = true;
    this.armGeneration += 1;
    this.clearTimers();
    clearTimeout(this.subscriberRetry);
    this.canary = undefined;
    this.options.near.disarm();
    for (const off of this.detach.splice(0)) off();
  }

  private on(client: Redis, event: string, listener: (...args: unknown[]) => void): void {
    client.on(event, listener);
    this.detach.push(() => client.off(event, listener));
  }

  private async subscriberReady(): Promise<void> {
    if (this.closed) return;
    const generation = ++this.subscriberGeneration;
    this.subscriberId = undefined;
    this.lost('invalidations_ready');
    const { invalidations } = this.options;
    try {
      const id = Number(await invalidations.client('ID'));
      await invalidations.subscribe(INVALIDATION_CHANNEL);
      if (generation !== this.subscriberGeneration || this.closed) return;
      this.subscriberId = id;
      void this.arm();
    } catch (err) {
      if (generation !== this.subscriberGeneration || this.closed) return;
      if (isRefusal(err)) {
        // an answer, not a lost connection (an ACL without subscribe or the channel): ask again much later
        this.refused(err);
        this.subscriberRetry = setTimeout(() => {
          this.subscriberRetry = undefined;
          if (generation === this.subscriberGeneration) void this.subscriberReady();
        }, REFUSED_RETRY_MS);
        this.subscriberRetry.unref();
        return;
      }
      // start over on a fresh connection (its 'ready' comes back here)
      invalidations.disconnect(true);
    }
  }

  private refused(err: unknown): void {
    const message = err instanceof Error ? err.message.slice(0, 200) : String(err);
    if (this.refusal === message) return;
    this.refusal = message;
    this.emit({ state: 'refused', message });
  }

  private restart(reason: Reason): void {
    this.lost(reason);
    void this.arm();
  }

  private lost(reason: Reason): void {
    this.armGeneration += 1;
    this.clearTimers();
    this.canary = undefined;
    const near = this.options.near;
    const was = near.isArmed;
    near.disarm();
    if (was && !this.closed) this.emit({ state: 'disarmed', reason });
  }

  private async arm(): Promise<void> {
    const generation = this.armGeneration;
    const { reads, invalidations } = this.options;
    const id = this.subscriberId;
    if (this.closed || id === undefined || reads.status !== 'ready' || invalidations.status !== 'ready') return;
    try {
      await reads.client('TRACKING', 'on', 'REDIRECT', String(id));
      if (generation !== this.armGeneration) return;
      const seen = await this.check();
      if (generation !== this.armGeneration || this.closed) return;
      if (seen instanceof Error) throw seen;
      if (!seen) {
        this.failedArms += 1;
        // a hung subscriber, or a redirect to a client id that is not ours (after a failover): start it over
        if (this.failedArms % 3 === 0) invalidations.disconnect(true);
        else this.retryLater();
        return;
      }
      this.failedArms = 0;
      this.refusal = undefined;
      this.options.near.arm();
      this.emit({ state: 'armed' });
      this.checkLater();
    } catch (err) {
      if (generation !== this.armGeneration) return;
      if (isRefusal(err)) {
        this.refused(err);
        this.retryLater(REFUSED_RETRY_MS);
      } else {
        this.retryLater();
      }
    }
  }

  /**
   * The canary: true when `reads`' write of a key it read comes back as an invalidation on the
   * subscriber in time; false when it does not or the connection failed; Redis' refusal (ACL) as is.
   */
  private async check(): Promise<boolean | Error> {
    const { reads, prefix, checkTimeoutMs } = this.options;
    this.canaries += 1;
    const name = `${prefix}__near:${this.nonce}:${this.canaries}`;
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), checkTimeoutMs);
      timer.unref();
      this.canary = { name, seen: () => resolve(true) };
    });
    try {
      await reads.get(name);
      await reads.set(name, '1', 'PX', Math.max(1000, 2 * checkTimeoutMs));
      return await seen;
    } catch (err) {
      return isRefusal(err) ? (err as Error) : false;
    } finally {
      clearTimeout(timer);
      if (this.canary?.name === name) this.canary = undefined;
    }
  }

  private checkLater(): void {
    const generation = this.armGeneration;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.check().then((seen) => {
        if (generation !== this.armGeneration || this.closed) return;
        if (seen === true) {
          this.checkLater();
          return;
        }
        // invalidations stopped arriving (or the check could not run): certainty is lost
        this.lost('check_failed');
        this.options.invalidations.disconnect(true);
      });
    }, this.options.checkEveryMs ?? 2000);
    this.checkTimer.unref();
  }

  private retryLater(delayMs = this.options.retryMs ?? 1000): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.arm();
    }, delayMs);
    this.retryTimer.unref();
  }

  private clearTimers(): void {
    clearTimeout(this.checkTimer);
    clearTimeout(this.retryTimer);
    this.checkTimer = undefined;
    this.retryTimer = undefined;
  }

  /** An invalidation message: a key name, an array of them, or null (FLUSHALL / FLUSHDB: everything). */
  private received(message: unknown): void {
    if (Array.isArray(message)) {
      if (message.length === 0) this.options.near.flush();
      for (const key of message) this.invalidated(key);
      return;
    }
    this.invalidated(message);
  }

  private invalidated(key: unknown): void {
    const near = this.options.near;
    if (!Buffer.isBuffer(key) && typeof key !== 'string') {
      near.flush();
      return;
    }
    const name = key.toString();
    if (name === '') {
      near.flush();
      return;
    }
    if (this.canary !== undefined && this.canary.name === name) this.canary.seen();
    near.invalidate(name);
  }

  private emit(change: Omit<CacheNearCacheEvent, 'name' | 'backend' | 'endpoint'>): void {
    this.options.events?.emit({ name: EventName.cacheNearCache, backend: 'redis', endpoint: this.options.endpoint, ...change });
  }
}
