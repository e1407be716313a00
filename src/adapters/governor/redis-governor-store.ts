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
 *
 * Leases (`leaseMs` > 0, not in a Cluster): a read of a busy credential asks the acquire script for a
 * block too — a few slots (zset members of their own, in flight until given back) and tens of points
 * (charged up front in the bucket of the lease's end) — granted only while the credential is far from
 * its limits (half of each, with the block). The next reads of that credential in this process are
 * admitted from the block without a round trip until the lease ends (`leaseMs` after the acquire was
 * sent, by this process' clock; the slot of the call that got it joins the block); then its free
 * slots and unspent points are given back, riding on a later script call like releases; a slot in
 * use when the lease ends is given back when its call is over. A hold is published (PUBLISH in the
 * hold script) and every process drops that credential's lease on the message; leases are granted
 * and used only while this process' subscriber connection is connected and subscribed, and are
 * dropped on any Redis error or connection change.
 */
import type { Cluster, Redis } from 'ioredis';
import { HoldChannel } from './hold-channel.js';
import { ACQUIRE, HOLD, RELEASE } from './redis-governor-scripts.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { GovernedCall } from '../../domain/ports/governor.port.js';
import { enforcedSpacingMs, leaseSize, type GovernorLimits, type GovernorStore, type SlotRef, type TryResult } from './governor-store.js';
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
  /** Length of a lease of reads (0 = none, the default; ignored in a Cluster). */
  leaseMs?: number;
  /** Told when a hold published by a process (this one included) arrives: partition, ms left. */
  onHoldMessage?: (partition: string, ms: number) => void;
}

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

/**
 * A block of slots and points of one credential, held by this process until `expiresAt`: reads are
 * admitted from it without a round trip.
 */
interface Lease {
  readonly partition: string;
  /** The slot id of the call that got it; its slots are `<id>~1…n`. */
  readonly id: string;
  /** The points window bucket its points were charged to. */
  readonly bucket: number;
  /** This process' clock: before the acquire was sent, and leaseMs after (a clock going back ends it). */
  readonly grantedAt: number;
  readonly expiresAt: number;
  /** Its slots no call uses now. */
  readonly free: string[];
  /** Points not spent yet. */
  points: number;
  ended: boolean;
}

/** A slot or points that may be taken in Redis, to give back at the next call that succeeds. */
interface Orphan {
  partition: string;
  bucket: string;
  back: string;
}

interface GovernorCommands {
  /** numkeys first: 4 + 2 per release ridden along. */
  mirrorGovernorAcquire(...args: Array<string | number>): Promise<[number, number] | [number, number, number, number]>;
  /** numkeys first: 2 per release. */
  mirrorGovernorRelease(...args: Array<string | number>): Promise<number>;
  mirrorGovernorHold(...args: string[]): Promise<number>;
}

const NO_RELEASES: PendingRelease[] = [];
const NOOP = (): void => undefined;

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
   * command timeout after the script ran), a release while Redis was not usable, a lease that ended
   * then. Given back at the next call that succeeds, so fleet-wide concurrency is not eaten by slots
   * waiting out their lease.
   */
  private readonly orphans = new Map<string, Orphan>();
  /** Releases waiting for the next attempt (or RELEASE_BATCH_MS): none in a Cluster. */
  private pending: PendingRelease[] = [];
  private pendingTimer: NodeJS.Timeout | undefined;
  private readonly cluster: boolean;
  /** 0 = no leases (the option, or a Cluster). */
  private readonly leaseMs: number;
  private readonly leaseSlots: number;
  private readonly leasePoints: number;
  private readonly channel: string;
  /** Partition → this process' lease of it. */
  private readonly leases = new Map<string, Lease>();
  /** Slot id of a call admitted from a lease → that lease. */
  private readonly leasedSlots = new Map<string, Lease>();
  /** Partitions with an acquire asking for a lease on its way. */
  private readonly asking = new Set<string>();
  /**
   * Partition → when its last read asked for a turn here (a lease is asked only for a busy
   * credential). A record updated in place: a Map value set to a new time would allocate a number
   * per call that outlives the young generation.
   */
  private readonly lastRead = new Map<string, { at: number }>();
  private sweeper: (() => void) | undefined;
  /** The hold messages (leases only): leases are granted and used only while it is subscribed. */
  private readonly holds: HoldChannel | undefined;
  /** Bumped by every subscription or connection change: a lease granted across one is not kept. */
  private epoch = 0;
  private closed = false;
  private readonly onClientClose = (): void => this.connectionChanged();
  /** Reads admitted from a lease so far (the leased admissions counter). */
  leasedAdmissions = 0;

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
    // leases need the hold messages; in a Cluster they are off (docs/resilience.md)
    this.leaseMs = this.cluster ? 0 : Math.max(0, options.leaseMs ?? 0);
    ({ slots: this.leaseSlots, points: this.leasePoints } = leaseSize(options.limits));
    this.channel = `${this.prefix}holds`;
    if (this.leaseMs > 0) {
      this.options.client.on('close', this.onClientClose);
      this.holds = new HoldChannel({
        client: options.client as Redis,
        channel: this.channel,
        onHold: (partition, ms) => this.holdMessage(partition, ms),
        onLost: () => this.connectionChanged(),
      });
    }
  }

  /** True while the hold messages are known to arrive. */
  private get subscribed(): boolean {
    return this.holds?.subscribed === true;
  }

  /** True while leases may be granted and used (the subscriber is connected and subscribed). */
  get leasing(): boolean {
    return this.subscribed;
  }

  /** Leases this process holds now (tests). */
  get leaseCount(): number {
    return this.leases.size;
  }

  /** The Redis keys of a partition (one hash tag: one Cluster slot). */
  keysOf(partition: string): { slots: string; points: string; lastWrite: string; hold: string } {
    const base = `${this.prefix}{${partition}}:`;
    return { slots: `${base}s`, points: `${base}p`, lastWrite: `${base}w`, hold: `${base}h` };
  }

  /**
   * What is decided without Redis: a hold known here, Redis out of use (the memory counters), a read
   * admitted from this credential's lease. Else undefined, and tryAcquire asks Redis.
   */
  tryAcquireLocal(call: GovernedCall, slotId: string): TryResult | undefined {
    const fallback = this.options.fallback;
    const held = fallback.heldForMs(call.partition);
    if (held > 0) return { kind: 'held', retryAfterMs: held };
    if (!this.usable()) {
      if (this.leases.size > 0) this.dropLeases();
      return fallback.tryAcquireNow(call, slotId);
    }
    if (this.leaseMs <= 0 || call.write || !this.options.limits.enabled) return undefined;
    const lease = this.leases.get(call.partition);
    return lease === undefined ? undefined : this.admitLeased(lease, call);
  }

  async tryAcquire(call: GovernedCall, slotId: string): Promise<TryResult> {
    const local = this.tryAcquireLocal(call, slotId);
    if (local !== undefined) return local;
    const fallback = this.options.fallback;
    const { limits } = this.options;
    let askLease = false;
    if (this.leaseMs > 0 && !call.write && limits.enabled) {
      // connected at the first read that reaches Redis: a governor never used opens nothing
      if (!this.closed) this.holds?.start();
      // no lease, or the one there just ended (tryAcquireLocal): this call's script may ask for the next
      askLease = this.wantsLease(call.partition);
    }
    const keys = this.keysOf(call.partition);
    const sentAt = this.options.clock.now();
    const epoch = this.epoch;
    if (askLease) this.asking.add(call.partition);
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
      askLease ? String(this.leaseSlots) : '0',
      String(this.leasePoints),
      String(this.leaseMs),
    ];
    for (const release of riding) {
      keyArgs.push(release.slots, release.points);
      args.push(release.slotId, release.bucket, release.back);
    }
    let reply: [number, number] | [number, number, number, number];
    try {
      reply = await this.client.mirrorGovernorAcquire(keyArgs.length, ...keyArgs, ...args);
    } catch (error) {
      if (askLease) this.asking.delete(call.partition);
      this.failed(error);
      // the script may have run: its slot (and a lease's) are given back once Redis answers again
      this.orphan(call.partition, slotId, '0', '0');
      if (askLease) for (let i = 1; i <= this.leaseSlots; i++) this.orphan(call.partition, `${slotId}~${i}`, '0', '0');
      this.settleReleases(riding, false);
      return fallback.tryAcquireNow(call, slotId);
    }
    if (askLease) this.asking.delete(call.partition);
    this.settleReleases(riding, true);
    this.succeeded();
    const [code, value] = [Number(reply[0]), Number(reply[1])];
    switch (code) {
      case 0: {
        const slot: SlotRef | undefined = limits.enabled ? { store: this, partition: call.partition, slotId, bucket: value, points: call.points } : undefined;
        const granted = reply.length === 4 && Number(reply[2]) === 1;
        const leaseBucket = Number(reply[3]);
        // a hold message that came while the script's reply was on its way: nothing more is sent
        const heldNow = fallback.heldForMs(call.partition);
        if (heldNow > 0) {
          if (slot !== undefined) this.giveBack(call.partition, slotId, String(value), String(call.points));
          if (granted) this.giveBackLease(call.partition, slotId, leaseBucket, this.leasePoints);
          return { kind: 'held', retryAfterMs: heldNow };
        }
        if (granted) {
          // kept only when no hold message can have been missed since the acquire was sent
          if (this.subscribed && this.epoch === epoch && !this.closed && !this.leases.has(call.partition)) {
            const lease = this.install(call.partition, slotId, leaseBucket, sentAt);
            // the call's own slot joins the lease: given back to it, not to Redis (one round trip per lease)
            if (slot !== undefined) {
              this.leasedSlots.set(slotId, lease);
            }
          } else this.giveBackLease(call.partition, slotId, leaseBucket, this.leasePoints);
        }
        return { kind: 'admitted', slot };
      }
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

  /**
   * A read admitted from `lease`, or undefined: the lease is over (its time, or the subscription), or
   * it has no slot or points left — then it ends too, and the call's acquire asks for the next one.
   */
  private admitLeased(lease: Lease, call: GovernedCall): TryResult | undefined {
    const now = this.options.clock.now();
    const slotId = lease.free.at(-1);
    if (!this.subscribed || now >= lease.expiresAt || now < lease.grantedAt || slotId === undefined || lease.points < call.points) {
      this.endLease(lease);
      return undefined;
    }
    lease.free.pop();
    lease.points -= call.points;
    const read = this.lastRead.get(call.partition);
    if (read !== undefined) read.at = now; // still busy: the next lease is asked for when this one ends
    this.leasedSlots.set(slotId, lease);
    if (this.leasedSlots.size > 10_000) this.forgetEndedSlots();
    this.leasedAdmissions++;
    return { kind: 'admitted', slot: { store: this, partition: call.partition, slotId, bucket: lease.bucket, points: call.points }, leased: true };
  }

  /**
   * Ask for a lease: subscribed, none held or asked for, and the credential read here within half a
   * lease (so that the lease can be expected to admit a call or more: a lease that ends unused costs
   * Redis its slots and points both ways for nothing).
   */
  private wantsLease(partition: string): boolean {
    const now = this.options.clock.now();
    const read = this.lastRead.get(partition);
    if (read === undefined) {
      this.lastRead.set(partition, { at: now });
      if (this.lastRead.size > 10_000) {
        // the oldest inserted goes (a crude bound: a busy one dropped only misses one lease)
        const oldest = this.lastRead.keys().next().value;
        if (oldest !== undefined) this.lastRead.delete(oldest);
      }
      return false;
    }
    const last = read.at;
    read.at = now;
    return this.subscribed && now - last < this.leaseMs / 2 && now >= last && !this.leases.has(partition) && !this.asking.has(partition);
  }

  private install(partition: string, id: string, bucket: number, sentAt: number): Lease {
    const free: string[] = [];
    for (let i = this.leaseSlots; i >= 1; i--) free.push(`${id}~${i}`);
    const lease: Lease = { partition, id, bucket, grantedAt: sentAt, expiresAt: sentAt + this.leaseMs, free, points: this.leasePoints, ended: false };
    this.leases.set(partition, lease);
    // a lease nobody uses again is ended by the sweeper (its slots and points go back)
    this.sweeper ??= this.options.clock.every(this.leaseMs, () => this.sweep());
    return lease;
  }

  private sweep(): void {
    const now = this.options.clock.now();
    for (const lease of [...this.leases.values()]) if (now >= lease.expiresAt || now < lease.grantedAt || !this.subscribed) this.endLease(lease);
  }

  /** No more reads from `lease`: its free slots and unspent points go back (in use slots go back with their calls). */
  private endLease(lease: Lease): void {
    if (lease.ended) return;
    lease.ended = true;
    if (this.leases.get(lease.partition) === lease) this.leases.delete(lease.partition);
    // a slot in use goes back to Redis when its call is over, as any slot does (its SlotRef says where)
    const free = lease.free.splice(0);
    let back = lease.points;
    lease.points = 0;
    if (free.length === 0 && back > 0) free.push(`${lease.id}~0`); // no such slot: only the points go back
    for (const slotId of free) {
      this.giveBack(lease.partition, slotId, String(lease.bucket), String(back));
      back = 0;
    }
    if (this.leases.size === 0 && this.sweeper !== undefined) {
      this.sweeper();
      this.sweeper = undefined;
    }
  }

  /**
   * Bounds the leased slots remembered: a slot of an ended lease is given back to Redis as any slot
   * when its call is over, with or without its entry here (a permit never released, a stream nobody
   * closes, would otherwise keep one).
   */
  private forgetEndedSlots(): void {
    for (const [slotId, lease] of this.leasedSlots) if (lease.ended) this.leasedSlots.delete(slotId);
  }

  /** A lease granted but not kept: all its slots and points go back. */
  private giveBackLease(partition: string, id: string, bucket: number, points: number): void {
    for (let i = 1; i <= this.leaseSlots; i++) this.giveBack(partition, `${id}~${i}`, String(bucket), i === 1 ? String(points) : '0');
  }

  /** Ends every lease of this process (a Redis error, a connection or subscription change, close). */
  private dropLeases(): void {
    for (const lease of [...this.leases.values()]) this.endLease(lease);
  }

  /** Resolves once the slot is given back in Redis (riding on an attempt, or on its own); nothing to wait for when it went back to its lease. */
  release(slot: SlotRef, sent: boolean): Promise<void> | void {
    const lease = this.leasedSlots.get(slot.slotId);
    if (lease !== undefined) this.leasedSlots.delete(slot.slotId);
    if (lease !== undefined && !lease.ended) {
      // back to the lease, which still runs: no round trip
      lease.free.push(slot.slotId);
      if (sent) return;
      // points never spent: to the lease when they were its own, else (the call that got the lease) to their bucket
      if (slot.bucket === lease.bucket) lease.points += slot.points;
      else this.giveBack(slot.partition, `${lease.id}~0`, String(slot.bucket), String(slot.points));
      return;
    }
    return new Promise<void>((done) => this.giveBack(slot.partition, slot.slotId, String(slot.bucket), sent ? '0' : String(slot.points), done));
  }

  /** Gives a slot (and `back` points of `bucket`) back in Redis: queued for the next attempt, or an orphan while Redis cannot be used. */
  private giveBack(partition: string, slotId: string, bucket: string, back: string, done: () => void = NOOP): void {
    if (!this.usable()) {
      this.orphan(partition, slotId, bucket, back); // given back once Redis answers again (else its lease lapses)
      done();
      return;
    }
    const keys = this.keysOf(partition);
    this.pending.push({ slots: keys.slots, points: keys.points, slotId, bucket, back, partition, done });
    if (this.cluster) void this.sendPending();
    else if (this.pendingTimer === undefined) {
      this.pendingTimer = setTimeout(() => void this.sendPending(), RELEASE_BATCH_MS);
      this.pendingTimer.unref();
    }
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
      if (!sent) this.orphan(release.partition, release.slotId, release.bucket, release.back);
      release.done();
    }
  }

  private orphan(partition: string, slotId: string, bucket: string, back: string): void {
    if (this.orphans.size < 10_000) this.orphans.set(slotId, { partition, bucket, back });
  }

  /** Published (not in a Cluster) whatever this process' leaseMs: replicas that lease learn it at once. */
  async hold(partition: string, ms: number): Promise<void> {
    if (!(ms > 0)) return;
    this.options.fallback.holdNow(partition, ms);
    const lease = this.leases.get(partition);
    if (lease !== undefined) this.endLease(lease);
    if (!this.usable()) return;
    try {
      await this.client.mirrorGovernorHold(this.keysOf(partition).hold, String(Math.ceil(ms)), this.cluster ? '' : this.channel, partition);
      this.succeeded();
    } catch (error) {
      this.failed(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dropLeases();
    this.asking.clear();
    this.lastRead.clear();
    if (this.usable()) await this.sendPending();
    else {
      clearTimeout(this.pendingTimer);
      this.pendingTimer = undefined;
      this.settleReleases(this.pending.splice(0), false);
    }
    if (this.leaseMs > 0) this.options.client.off('close', this.onClientClose);
    await this.holds?.close();
    await this.options.fallback.close();
  }

  /** Leaves Redis alone for `suspendMs` (e.g. a cache call on the same Redis just timed out). */
  suspend(): void {
    this.suspendedUntil = Math.max(this.suspendedUntil, this.options.clock.now() + this.suspendMs);
    if (this.leases.size > 0) this.dropLeases();
  }

  private usable(): boolean {
    return this.client.status === 'ready' && this.options.clock.now() >= this.suspendedUntil && this.available();
  }

  private failed(error: unknown): void {
    this.suspend();
    this.connectionChanged();
    if (!this.failing) this.options.onError?.(error);
    this.failing = true;
  }

  private succeeded(): void {
    this.failing = false;
    if (this.orphans.size === 0) return;
    const orphans = [...this.orphans];
    this.orphans.clear();
    for (const [slotId, { partition, bucket, back }] of orphans) {
      const keys = this.keysOf(partition);
      // best effort: a slot that was never taken is a no-op; one that fails again lapses with its lease
      this.client.mirrorGovernorRelease(2, keys.slots, keys.points, slotId, bucket, back).catch(() => undefined);
    }
  }

  /** A Redis error or a connection change: no lease granted before it is kept or used. */
  private connectionChanged(): void {
    this.epoch++;
    if (this.leases.size > 0) this.dropLeases();
  }

  /** A hold message: the credential is held on every process now, and its lease here ends. */
  private holdMessage(partition: string, ms: number): void {
    this.options.fallback.holdNow(partition, ms);
    const lease = this.leases.get(partition);
    if (lease !== undefined) this.endLease(lease);
    this.options.onHoldMessage?.(partition, ms);
  }
}
