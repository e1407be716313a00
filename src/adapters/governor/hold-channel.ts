/**
 * The governor's hold messages (leases of reads, redis-governor-store.ts): one subscriber connection
 * per process on `<prefix>__gov:holds`, where every replica's hold script publishes
 * "<partition> <ms left>". The connection has the request-path connection's settings, fail-fast (no
 * offline queue, one retry, its command timeout, lazy connect, an 'error' listener), and is
 * subscribed again after every reconnect; a SUBSCRIBE Redis refuses (an ACL without the channel) is
 * tried again every second. `subscribed` is true only while the subscription is known to be on: the
 * store grants and uses leases only then, and is told (`onLost`) whenever it may have missed a message.
 */
import type { Redis, RedisOptions } from 'ioredis';

export interface HoldChannelOptions {
  /** The request-path connection, duplicated for the subscriber. */
  client: Redis;
  channel: string;
  /** A hold message: the partition and the ms it is held for. */
  onHold: (partition: string, ms: number) => void;
  /** The subscription is off (or may have missed messages): leases granted so far are not to be trusted. */
  onLost: () => void;
}

/** Longest hold a message is believed for (a publisher's cap is the same). */
export const MAX_MESSAGE_HOLD_MS = 3_600_000;

export class HoldChannel {
  private subscriber: Redis | undefined;
  private isSubscribed = false;
  /** Bumped when the subscription is lost: a SUBSCRIBE answered across that does not count. */
  private generation = 0;
  /** A SUBSCRIBE that failed on a connection that stayed up is tried again after a second. */
  private resubscribeTimer: NodeJS.Timeout | undefined;
  /** Starts the subscriber again after ioredis ended it. */
  private reviveTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: HoldChannelOptions) {}

  /** True while the subscriber is connected and subscribed. */
  get subscribed(): boolean {
    return this.isSubscribed;
  }

  /** Opens the subscriber (once; later calls do nothing). */
  start(): void {
    if (this.subscriber !== undefined || this.closed) return;
    const overrides: Partial<RedisOptions> = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, autoResubscribe: false, connectionName: 'mirror-governor-holds' };
    const subscriber = this.options.client.duplicate(overrides);
    this.subscriber = subscriber;
    // an 'error' listener always (ioredis errors would otherwise crash the process); the cache reports the outage
    subscriber.on('error', () => {
      this.lost();
      // an error that left the connection up (no 'close' follows): subscribe again on it
      if (subscriber.status === 'ready') void this.subscribe(subscriber);
    });
    subscriber.on('close', () => this.lost());
    subscriber.on('ready', () => void this.subscribe(subscriber));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.options.channel) this.message(message);
    });
    // ioredis gave up on it (it never does with the cache's retry strategy): start it again
    subscriber.on('end', () => {
      if (this.closed || this.subscriber !== subscriber || this.reviveTimer !== undefined) return;
      this.reviveTimer = setTimeout(() => {
        this.reviveTimer = undefined;
        if (!this.closed && this.subscriber === subscriber) subscriber.connect().catch(() => undefined);
      }, 1000);
      this.reviveTimer.unref();
    });
    subscriber.connect().catch(() => undefined); // retried in the background by ioredis
  }

  async close(): Promise<void> {
    this.closed = true;
    this.isSubscribed = false;
    clearTimeout(this.resubscribeTimer);
    clearTimeout(this.reviveTimer);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber !== undefined) {
      if (subscriber.status === 'ready') await subscriber.quit().catch(() => undefined);
      subscriber.disconnect();
    }
  }

  private async subscribe(subscriber: Redis): Promise<void> {
    const generation = this.generation;
    try {
      await subscriber.subscribe(this.options.channel);
    } catch {
      if (this.generation !== generation) return;
      this.lost();
      if (this.resubscribeTimer === undefined && !this.closed) {
        this.resubscribeTimer = setTimeout(() => {
          this.resubscribeTimer = undefined;
          if (!this.closed && this.subscriber === subscriber && subscriber.status === 'ready' && !this.isSubscribed) void this.subscribe(subscriber);
        }, 1000);
        this.resubscribeTimer.unref();
      }
      return;
    }
    if (!this.closed && this.subscriber === subscriber && subscriber.status === 'ready' && this.generation === generation) this.isSubscribed = true;
  }

  private lost(): void {
    this.isSubscribed = false;
    this.generation++;
    this.options.onLost();
  }

  /** "<partition> <ms left>". */
  private message(message: string): void {
    const space = message.lastIndexOf(' ');
    const partition = message.slice(0, space);
    const ms = Math.min(MAX_MESSAGE_HOLD_MS, Number(message.slice(space + 1)));
    if (space <= 0 || !(ms > 0)) return;
    this.options.onHold(partition, ms);
  }
}
