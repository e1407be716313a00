/**
 * Replicas' Redis governors on one real redis-server (two connections, two governors: two
 * "replicas"), each fleet under a key prefix of its own: the setup the Redis governor suites share.
 * `start()` in test.before, `close()` in test.after.always (every governor, cache and the server).
 */
import { RedisCache } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { RedisGovernor, type RedisGovernorOptions } from '../../src/adapters/governor/redis-governor.adapter.js';
import { systemClock } from '../../src/adapters/clock/system-clock.adapter.js';
import { startRedis, type RedisProcess } from './redis-harness.js';

export interface GovernorFleetSettings {
  /** Key prefixes `<prefix><n>:`. */
  prefix: string;
  /** The limits (and other options) every governor gets unless a fleet says otherwise. */
  limits: Partial<RedisGovernorOptions>;
  /** Of each replica's cache connection. */
  commandTimeoutMs: number;
  pollMs: number;
}

export class GovernorFleets {
  /** The server (after start()). */
  redis!: RedisProcess;
  /** Every replica's cache, in the order made (its `client` is the governor's connection). */
  readonly caches: RedisCache[] = [];
  private readonly governors: RedisGovernor[] = [];
  private made = 0;

  constructor(private readonly settings: GovernorFleetSettings) {}

  async start(): Promise<void> {
    this.redis = await startRedis();
  }

  async close(): Promise<void> {
    await Promise.all(this.governors.map((g) => g.close()));
    await Promise.all(this.caches.map((c) => c.close()));
    await this.redis?.stop();
  }

  /** A key prefix no fleet used: `<tag><n>:`. */
  newPrefix(tag = this.settings.prefix): string {
    return `${tag}${this.made++}:`;
  }

  /** A governor made by the test itself, closed with the others. */
  track<G extends RedisGovernor>(governor: G): G {
    this.governors.push(governor);
    return governor;
  }

  /** `replicas` governors with these limits over the defaults, under a new key prefix. */
  async fleet(limits: Partial<RedisGovernorOptions> = {}, replicas = 2): Promise<{ governors: RedisGovernor[]; keyPrefix: string }> {
    const keyPrefix = this.newPrefix();
    const governors: RedisGovernor[] = [];
    for (let i = 0; i < replicas; i++) {
      const cache = new RedisCache({ url: this.redis.url, keyPrefix, commandTimeoutMs: this.settings.commandTimeoutMs });
      this.caches.push(cache);
      await cache.start();
      const options = { ...this.settings.limits, ...limits, clock: systemClock, client: cache.client, keyPrefix, pollMs: this.settings.pollMs } as RedisGovernorOptions;
      const governor = new RedisGovernor(options);
      this.governors.push(governor);
      governors.push(governor);
    }
    return { governors, keyPrefix };
  }
}
