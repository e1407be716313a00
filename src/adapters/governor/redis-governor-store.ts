/**
 * The governor's counters in Redis, shared by every replica: one Lua script per attempt (hold,
 * concurrency, write spacing and points checked and taken atomically, in one round trip), one per
 * hold. Releases ride on the next attempt of this process (the script gives the slots back first,
 * then decides): an upstream call costs one round trip for its turn, not two. A release no attempt
 * picks up within RELEASE_BATCH_MS goes on its own (with any others waiting). In a Redis Cluster,
 * where one script touches one slot, a release goes at once, alone. Time is Redis' own (TIME), so
 * replicas with skewed clocks agree.
 *
 * Keys, per credential partition (a keyed hash, never the token), all under one hash tag so a Cluster
 * keeps them in one slot: `<prefix>__gov:{<partition>}:s` (slots in flight: a sorted set of lease
 * expiries, so the slots of a replica that died lapse on their own), `:p` (points per second over the
 * last 61 s, a hash), `:w` (time of the last write), `:h` (hold until). Every key has a TTL.
 *
 * When Redis cannot be used (the cache breaker is not closed, the connection is not ready, or a call
 * to it — the governor's or the cache's — just failed) the in-memory store answers instead, so a Redis outage never blocks a GitHub call.
 * Holds are written to both, and a memory hold counts even while Redis answers.
 */
import type { Cluster, Redis } from 'ioredis';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { GovernedCall } from '../../domain/ports/governor.port.js';
import { WINDOW_BUCKETS, enforcedSpacingMs, type GovernorLimits, type GovernorStore, type SlotRef, type TryResult } from './governor-store.js';
import type { MemoryGovernorStore } from './memory-governor-store.js';

export interface RedisGovernorStoreOptions {
  /** A fail-fast connection (no offline queue, a command timeout): the cache's request-path client. */
  client: Redis | Cluster;
  /** The cache key prefix; the governor's keys live in its reserved "__" namespace (snapshots skip it). */
  keyPrefix: string;
  limits: GovernorLimits;
  /** Answers while Redis cannot be used; also keeps a copy of every hold. */
  fallback: MemoryGovernorStore;
  clock: ClockPort;
  /** False while Redis should not be asked (e.g. the cache breaker is open). Default: always true. */
  available?: () => boolean;
  /** A slot not released after this long lapses (default 60 s). */
  slotTtlMs?: number;
  /** After a failed Redis call, the memory store answers for this long before Redis is tried again (default 1000 ms). */
  suspendMs?: number;
  /** Told once per outage when Redis fails (logs). */
  onError?: (error: unknown) => void;
}

// Gives back the slots of earlier calls (RELEASES_LUA, below), then: KEYS 1–4 slots, points, last
// write, hold; ARGV 1–8 enforce, maxConcurrent, pointsPerMinute, spacingMs (with headroom), points,
// write, slotId, slotTtlMs. Reply {code, value}: 0 admitted (value = bucket), 1 held (ms left),
// 2 concurrency, 3 spacing (ms to wait), 4 points (ms to wait).
// Releases: KEYS 5… slots and points of each, ARGV 9… slotId, bucket, points to give back (0 when
// the call was sent) of each.
const RELEASES_LUA = (keyAt: number, argAt: number) => `
local k, a = ${keyAt}, ${argAt}
while KEYS[k + 1] do
  redis.call('ZREM', KEYS[k], ARGV[a])
  local back = tonumber(ARGV[a + 2])
  if back > 0 and redis.call('HEXISTS', KEYS[k + 1], ARGV[a + 1]) == 1 then
    if redis.call('HINCRBY', KEYS[k + 1], ARGV[a + 1], -back) <= 0 then redis.call('HDEL', KEYS[k + 1], ARGV[a + 1]) end
  end
  k, a = k + 2, a + 3
end
`;

const ACQUIRE = `
if redis.replicate_commands then redis.replicate_commands() end
${RELEASES_LUA(5, 9)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[4]) or '0')
if hold > now then return {1, hold - now} end
if ARGV[1] ~= '1' then return {0, 0} end
local maxC, ppm, spacing, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local write, ttl = ARGV[6] == '1', tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= maxC then return {2, 0} end
if write and spacing > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '-1')
  if last >= 0 and now < last + spacing then return {3, last + spacing - now} end
end
local second = math.floor(now / 1000)
local oldest = second - ${WINDOW_BUCKETS - 1}
local fields = redis.call('HGETALL', KEYS[2])
local total, kept = 0, {}
for i = 1, #fields, 2 do
  local b, v = tonumber(fields[i]), tonumber(fields[i + 1])
  if b < oldest then redis.call('HDEL', KEYS[2], fields[i]) else total = total + v; kept[#kept + 1] = {b, v} end
end
if total > 0 and total + cost > ppm then
  table.sort(kept, function(x, y) return x[1] < y[1] end)
  local excess = total + cost - ppm
  for _, bv in ipairs(kept) do
    excess = excess - bv[2]
    if excess <= 0 then return {4, math.max(1, (bv[1] + ${WINDOW_BUCKETS}) * 1000 - now)} end
  end
  return {4, ${WINDOW_BUCKETS * 1000}}
end
redis.call('HINCRBY', KEYS[2], second, cost)
redis.call('PEXPIRE', KEYS[2], ${(WINDOW_BUCKETS + 1) * 1000})
redis.call('ZADD', KEYS[1], now + ttl, ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
if write then redis.call('SET', KEYS[3], now, 'PX', spacing + 1000) end
return {0, second}
`;

// KEYS: slots and points of each release. ARGV: slotId, bucket, points to give back of each.
const RELEASE = `
${RELEASES_LUA(1, 1)}
return 1
`;

/** Longest a release waits for an attempt of this process to ride on before it goes alone. */
export const RELEASE_BATCH_MS = 5;

/** A slot given back that has not reached Redis yet. */
interface PendingRelease {
  slots: string;
  points: string;
  slotId: string;
  bucket: string;
  back: string;
  partition: string;
  done: () => void;
}

// KEYS: hold. ARGV: ms. Keeps the later of the current and the new end.
const HOLD = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
return 1
`;

interface GovernorCommands {
  /** numkeys first: 4 + 2 per release ridden along. */
  mirrorGovernorAcquire(...args: Array<string | number>): Promise<[number, number]>;
  /** numkeys first: 2 per release. */
  mirrorGovernorRelease(...args: Array<string | number>): Promise<number>;
  mirrorGovernorHold(...args: string[]): Promise<number>;
}

const NO_RELEASES: PendingRelease[] = [];

export class RedisGovernorStore implements GovernorStore {
  private readonly client: Redis & GovernorCommands;
  private readonly prefix: string;
  private readonly available: () => boolean;
  private readonly slotTtlMs: number;
  private readonly suspendMs: number;
  private suspendedUntil = 0;
  private failing = false;
  /**
   * Slots that may be taken in Redis but could not be given back: an acquire whose reply was lost (a
   * command timeout after the script ran), a release while Redis was not usable. Given back at the
   * next call that succeeds, so fleet-wide concurrency is not eaten by slots waiting out their lease.
   */
  private readonly orphans = new Map<string, string>();
  /** Releases waiting for the next attempt (or RELEASE_BATCH_MS): none in a Cluster. */
  private pending: PendingRelease[] = [];
  private pendingTimer: NodeJS.Timeout | undefined;
  private readonly cluster: boolean;

  constructor(private readonly options: RedisGovernorStoreOptions) {
    this.client = options.client as Redis & GovernorCommands;
    this.prefix = `${options.keyPrefix}__gov:`;
    this.available = options.available ?? (() => true);
    this.slotTtlMs = options.slotTtlMs ?? 60_000;
    this.suspendMs = options.suspendMs ?? 1000;
    const client = options.client as unknown as Record<string, unknown>;
    this.cluster = client['isCluster'] === true;
    if (typeof client['mirrorGovernorAcquire'] !== 'function') {
      // no numberOfKeys: each call says how many keys it passes (releases ride along)
      options.client.defineCommand('mirrorGovernorAcquire', { lua: ACQUIRE });
      options.client.defineCommand('mirrorGovernorRelease', { lua: RELEASE });
      options.client.defineCommand('mirrorGovernorHold', { numberOfKeys: 1, lua: HOLD });
    }
  }

  /** The Redis keys of a partition (one hash tag: one Cluster slot). */
  keysOf(partition: string): { slots: string; points: string; lastWrite: string; hold: string } {
    const base = `${this.prefix}{${partition}}:`;
    return { slots: `${base}s`, points: `${base}p`, lastWrite: `${base}w`, hold: `${base}h` };
  }

  async tryAcquire(call: GovernedCall, slotId: string): Promise<TryResult> {
    const fallback = this.options.fallback;
    const held = fallback.heldForMs(call.partition);
    if (held > 0) return { kind: 'held', retryAfterMs: held };
    if (!this.usable()) return fallback.tryAcquireNow(call, slotId);
    const { limits } = this.options;
    const keys = this.keysOf(call.partition);
    const riding = this.takePending();
    const keyArgs: string[] = [keys.slots, keys.points, keys.lastWrite, keys.hold];
    const args: string[] = [
      limits.enabled ? '1' : '0',
      String(limits.maxConcurrent),
      String(limits.pointsPerMinute),
      String(enforcedSpacingMs(limits.writeSpacingMs)),
      String(call.points),
      call.write ? '1' : '0',
      slotId,
      String(this.slotTtlMs),
    ];
    for (const release of riding) {
      keyArgs.push(release.slots, release.points);
      args.push(release.slotId, release.bucket, release.back);
    }
    let reply: [number, number];
    try {
      reply = await this.client.mirrorGovernorAcquire(keyArgs.length, ...keyArgs, ...args);
    } catch (error) {
      this.failed(error);
      this.orphan(call.partition, slotId);
      this.settleReleases(riding, false);
      return fallback.tryAcquireNow(call, slotId);
    }
    this.settleReleases(riding, true);
    this.succeeded();
    const [code, value] = [Number(reply[0]), Number(reply[1])];
    switch (code) {
      case 0:
        return { kind: 'admitted', slot: limits.enabled ? { store: this, partition: call.partition, slotId, bucket: value, points: call.points } : undefined };
      case 1:
        return { kind: 'held', retryAfterMs: value };
      case 2:
        return { kind: 'busy', reason: 'concurrency' };
      case 3:
        return { kind: 'busy', reason: 'spacing', retryAfterMs: value };
      default:
        return { kind: 'busy', reason: 'points', retryAfterMs: value };
    }
  }

  /** Resolves once the slot is given back in Redis (riding on an attempt, or on its own). */
  async release(slot: SlotRef, sent: boolean): Promise<void> {
    if (!this.usable()) {
      this.orphan(slot.partition, slot.slotId); // given back once Redis answers again (else its lease lapses)
      return;
    }
    const keys = this.keysOf(slot.partition);
    const back = sent ? '0' : String(slot.points);
    await new Promise<void>((done) => {
      this.pending.push({ slots: keys.slots, points: keys.points, slotId: slot.slotId, bucket: String(slot.bucket), back, partition: slot.partition, done });
      if (this.cluster) void this.sendPending();
      else if (this.pendingTimer === undefined) {
        this.pendingTimer = setTimeout(() => void this.sendPending(), RELEASE_BATCH_MS);
        this.pendingTimer.unref();
      }
    });
  }

  /** The releases waiting, handed to the caller (an attempt rides them, or sendPending sends them). */
  private takePending(): PendingRelease[] {
    if (this.pending.length === 0 || this.cluster) return NO_RELEASES;
    const taken = this.pending;
    this.pending = [];
    clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    return taken;
  }

  /** Sends the waiting releases on their own: one script call (one per release in a Cluster). */
  private async sendPending(): Promise<void> {
    clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    const releases = this.pending;
    this.pending = [];
    if (releases.length === 0) return;
    const groups = this.cluster ? releases.map((release) => [release]) : [releases];
    await Promise.all(
      groups.map(async (group) => {
        const keyArgs: string[] = [];
        const args: string[] = [];
        for (const release of group) {
          keyArgs.push(release.slots, release.points);
          args.push(release.slotId, release.bucket, release.back);
        }
        try {
          await this.client.mirrorGovernorRelease(keyArgs.length, ...keyArgs, ...args);
          this.settleReleases(group, true);
          this.succeeded();
        } catch (error) {
          this.failed(error);
          this.settleReleases(group, false);
        }
      }),
    );
  }

  /** Releases sent (or not: then orphans, given back at the next call that succeeds). */
  private settleReleases(releases: readonly PendingRelease[], sent: boolean): void {
    for (const release of releases) {
      if (!sent) this.orphan(release.partition, release.slotId);
      release.done();
    }
  }

  private orphan(partition: string, slotId: string): void {
    if (this.orphans.size < 10_000) this.orphans.set(slotId, partition);
  }

  async hold(partition: string, ms: number): Promise<void> {
    if (!(ms > 0)) return;
    this.options.fallback.holdNow(partition, ms);
    if (!this.usable()) return;
    try {
      await this.client.mirrorGovernorHold(this.keysOf(partition).hold, String(Math.ceil(ms)));
      this.succeeded();
    } catch (error) {
      this.failed(error);
    }
  }

  async close(): Promise<void> {
    if (this.usable()) await this.sendPending();
    else {
      clearTimeout(this.pendingTimer);
      this.pendingTimer = undefined;
      this.settleReleases(this.pending.splice(0), false);
    }
    await this.options.fallback.close();
  }

  /** Leaves Redis alone for `suspendMs` (e.g. a cache call on the same Redis just timed out). */
  suspend(): void {
    this.suspendedUntil = Math.max(this.suspendedUntil, this.options.clock.now() + this.suspendMs);
  }

  private usable(): boolean {
    return this.client.status === 'ready' && this.options.clock.now() >= this.suspendedUntil && this.available();
  }

  private failed(error: unknown): void {
    this.suspend();
    if (!this.failing) this.options.onError?.(error);
    this.failing = true;
  }

  private succeeded(): void {
    this.failing = false;
    if (this.orphans.size === 0) return;
    const orphans = [...this.orphans];
    this.orphans.clear();
    for (const [slotId, partition] of orphans) {
      const keys = this.keysOf(partition);
      // best effort: a slot that was never taken is a no-op; one that fails again lapses with its lease
      this.client.mirrorGovernorRelease(2, keys.slots, keys.points, slotId, '0', '0').catch(() => undefined);
    }
  }
}
