/**
 * LeasePort in Redis: one key per lease, `SET key owner NX PX ttl`; renew and release only when this
 * replica still owns it (a compare-and-set in Lua), so a replica whose lease ran out never takes or
 * drops another's. The key lives under the cache prefix in the reserved namespace ("<prefix>__lease:")
 * that snapshots skip.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import type { LeasePort } from '../../domain/ports/lease.port.js';
import { RESERVED_KEY_MARK } from '../cache/redis/redis-dump.adapter.js';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface RedisLeaseOptions {
  client: Redis | Cluster;
  keyPrefix: string;
  /** Who holds the lease, as stored in Redis (default: host name, pid and a random suffix). */
  owner?: string;
}

export class RedisLease implements LeasePort {
  readonly shared = true;
  readonly owner: string;
  private readonly client: Redis | Cluster;
  private readonly prefix: string;

  constructor(options: RedisLeaseOptions) {
    this.client = options.client;
    this.prefix = `${options.keyPrefix}${RESERVED_KEY_MARK}lease:`;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  key(name: string): string {
    return this.prefix + name;
  }

  async acquire(name: string, ttlMs: number): Promise<boolean> {
    const reply = await this.client.set(this.key(name), this.owner, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
    return reply === 'OK';
  }

  async renew(name: string, ttlMs: number): Promise<boolean> {
    const reply = await this.client.eval(RENEW, 1, this.key(name), this.owner, String(Math.max(1, Math.round(ttlMs))));
    return reply === 1;
  }

  async release(name: string): Promise<void> {
    await this.client.eval(RELEASE, 1, this.key(name), this.owner);
  }

  /** Who holds a lease now (operators, tests); undefined when nobody. */
  async holder(name: string): Promise<string | undefined> {
    return (await this.client.get(this.key(name))) ?? undefined;
  }
}
