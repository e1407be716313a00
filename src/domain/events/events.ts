import type { Outcome } from '../model.js';
import type { ErrorCode } from '../errors.js';

/**
 * Domain events with stable names. Listeners (metrics, readiness, logs) subscribe by name through the
 * bus adapter's typed `on(name, listener)`: DomainEventMap says which event each name carries.
 */
export const EventName = {
  /** One per answered GET/HEAD, whatever its outcome (DESIGN §4). */
  resourceResolved: 'resource.resolved',
  upstreamCalled: 'upstream.called',
  coalesced: 'request.coalesced',
  cacheOperation: 'cache.operation',
  cacheError: 'cache.error',
  cacheCorrupt: 'cache.corrupt',
  cacheConnection: 'cache.connection',
  cacheCluster: 'cache.cluster',
  cacheConnectionError: 'cache.connection_error',
  cacheMisconfigured: 'cache.misconfigured',
  cacheStatsFailed: 'cache.stats_failed',
  cacheNearCache: 'cache.near_cache',
  breakerChanged: 'breaker.changed',
  breakerFollowedPrimary: 'breaker.followed_primary',
  backendChanged: 'cache.backend_changed',
  httpCompleted: 'http.request.completed',
  snapshotCompleted: 'snapshot.completed',
  restoreCompleted: 'snapshot.restored',
  restoreProgress: 'snapshot.restore_progress',
  snapshotFailed: 'snapshot.failed',
  crossCredentialRevalidation: 'cache.cross_credential_revalidation',
  /** An old snapshot could not be removed after a new one (retention). */
  snapshotPruneFailed: 'snapshot.prune_failed',
  /** A restore refused a snapshot (corrupt, truncated, unknown version...) and tries the next older one. */
  snapshotRejected: 'snapshot.rejected',
  /** A restore found no usable snapshot, or the store or the cache failed: the cache stays as it is. */
  restoreFailed: 'snapshot.restore_failed',
  /** The cache lost its data and this replica holds the restore lease: the restore begins. */
  restoreStarted: 'snapshot.restore_started',
  /** The restored mark could not be written after a settled restore (the next check restores again). */
  restoreMarkFailed: 'snapshot.mark_failed',
  /** A snapshot or a restore was not attempted (the lease is taken, the cache holds its data...). */
  snapshotWorkSkipped: 'snapshot.work_skipped',
  /** A lease renewal found the lease gone, or failed, while a snapshot or restore ran. */
  snapshotLeaseLost: 'snapshot.lease_lost',
  /** The snapshot service's own connection failed to open (start) or close (stop). */
  snapshotConnectionFailed: 'snapshot.connection_failed',
  /** stop() could not end cleanly: work still running, or no final snapshot of a half-restored cache. */
  snapshotStopIncomplete: 'snapshot.stop_incomplete',
  /** The snapshot schedule met an error it did not expect (the next tick is scheduled anyway). */
  snapshotScheduleFailed: 'snapshot.schedule_failed',
  governorDecided: 'governor.decided',
  governorQueue: 'governor.queue_changed',
  governorHold: 'governor.hold',
} as const;

/** One per resolved GET/HEAD. */
export interface ResourceResolvedEvent {
  name: typeof EventName.resourceResolved;
  outcome: Outcome;
  /** Status of the answer relayed (cached or upstream's); absent when the mirror answered with its own failure. */
  status?: number;
  /** The code of the mirror's own failure, when it answered with one. */
  code?: ErrorCode;
  method: string;
  /** True when this caller shared another caller's upstream call. */
  collapsed: boolean;
  /** Seconds since the served entry was last validated (stale answers). */
  staleAgeSeconds?: number;
  /** Served without this request spending primary quota: why (absent when it spent some, or failed). */
  quotaSaved?: QuotaSaving;
  /** The client's User-Agent, raw (the metrics adapter reduces it to a bounded `client` label). */
  userAgent?: string;
}

/**
 * Why a served GET/HEAD spent no primary quota: fresh (a freshness-window hit, no call), not_modified
 * (an authenticated revalidation answered 304), coalesced (it shared another request's call).
 */
export type QuotaSaving = 'fresh' | 'not_modified' | 'coalesced';

/** Every call to GitHub. */
export interface UpstreamCalledEvent {
  name: typeof EventName.upstreamCalled;
  /**
   * ok (an HTTP answer), timeout, connection_error, offline, refused (the upstream governor kept it
   * back: waited upstream.governor.maxWaitMs in vain, or the credential is held — nothing was sent),
   * body_too_large (an answer over upstream.maxBodyBytes).
   */
  result: 'ok' | 'timeout' | 'connection_error' | 'offline' | 'refused' | 'body_too_large';
  status?: number;
  /** Whether the call counted against the client's hourly quota (a 304 to an authenticated client does not). */
  countedAgainstQuota: boolean;
  conditional: boolean;
  durationMs: number;
  /** x-ratelimit-remaining of the answer, when present. */
  rateLimitRemaining?: number;
  rateLimitResource?: string;
  /** The User-Agent of the client whose request made the call, raw (the metrics adapter bounds it). */
  userAgent?: string;
}

export interface CoalescedEvent {
  name: typeof EventName.coalesced;
  /** "local" (same process) or "shared" (across replicas). */
  scope: 'local' | 'shared';
}

/** Timing of one cache operation, per backend (the latency Redis adds). */
export interface CacheOperationEvent {
  name: typeof EventName.cacheOperation;
  backend: string;
  operation: 'lookup' | 'store' | 'forget' | 'representations';
  durationMs: number;
  /** For lookups: whether an entry was found. */
  found?: boolean;
  ok: boolean;
}

export interface CacheErrorEvent {
  name: typeof EventName.cacheError;
  backend: string;
  operation: string;
  code: string;
  message: string;
}

export interface CacheCorruptEvent {
  name: typeof EventName.cacheCorrupt;
  backend: string;
  reason: string;
  /** Size of the unreadable value. */
  bytes?: number;
}

/**
 * primary: writes (and lookups without a reader); reader: a read endpoint for lookups; near_reads and
 * near_invalidations: the near cache's tracked lookups and its invalidation subscriber (Redis).
 */
export type CacheConnectionRole = 'primary' | 'reader' | 'near_reads' | 'near_invalidations';

/** A connection of a shared cache backend (Redis) changed state. */
export interface CacheConnectionEvent {
  name: typeof EventName.cacheConnection;
  backend: string;
  role: CacheConnectionRole;
  /**
   * ready: takes commands; lost: dropped, reconnecting; unreachable: not connected at start (serving
   * without it, reconnecting in the background); restarting: the client gave the connection up, it is
   * started again.
   */
  state: 'ready' | 'lost' | 'unreachable' | 'restarting';
  /** Where it points, without credentials. */
  endpoint: string;
  /** ready: standalone, sentinel or cluster. */
  topology?: string;
  /** restarting: how many times in a row. */
  attempt?: number;
  /** unreachable: why. */
  message?: string;
}

/**
 * A Redis Cluster losing part of itself: a master that stopped answering (commands for its slots fail
 * at once and are served from the fallback, call by call) or answers again; the cluster saying it is
 * down (CLUSTERDOWN: the whole cache counts as not ready) or ok again.
 */
export interface CacheClusterEvent {
  name: typeof EventName.cacheCluster;
  backend: string;
  state: 'node_unreachable' | 'node_back' | 'down' | 'ok';
  /** node_*: the master, host:port. */
  node?: string;
  endpoint: string;
}

/**
 * A connection-level failure of a shared cache backend (no command failed by it alone; those are
 * cache.error). Frequent while the backend is down: the log subscriber throttles them.
 */
export interface CacheConnectionErrorEvent {
  name: typeof EventName.cacheConnectionError;
  backend: string;
  role: CacheConnectionRole;
  /** connection: the client's error; node: a cluster node's; reconnect: a restart attempt; quit: on close. */
  source: 'connection' | 'node' | 'reconnect' | 'quit';
  endpoint: string;
  /** source node: which node. */
  node?: string;
  message: string;
}

/** A cache option that works but defeats its purpose (told once, when the adapter is built). */
export interface CacheMisconfiguredEvent {
  name: typeof EventName.cacheMisconfigured;
  backend: string;
  /** cluster_key_prefix_hash_tag: a `{` in a cluster's key prefix would put every key in one slot. */
  problem: 'cluster_key_prefix_hash_tag';
}

/**
 * The Redis near cache (an in-process copy of looked-up values kept correct by Redis' invalidations)
 * started serving (armed: tracking on, invalidations seen arriving) or stopped (disarmed, everything
 * dropped) — why: a connection lost or reconnected, or the periodic check saw no invalidation come back.
 */
export interface CacheNearCacheEvent {
  name: typeof EventName.cacheNearCache;
  backend: string;
  /** refused: Redis answered a command the near cache needs with an error (an ACL): it stays off, asked again every 30 s. */
  state: 'armed' | 'disarmed' | 'refused';
  reason?: 'reads_ready' | 'reads_lost' | 'invalidations_ready' | 'invalidations_lost' | 'check_failed';
  /** refused: Redis' answer (e.g. NOPERM …; never a credential). */
  message?: string;
  endpoint: string;
}

/** A cache breaker's primary could not report its size; the fallback's is reported instead. */
export interface CacheStatsFailedEvent {
  name: typeof EventName.cacheStatsFailed;
  breaker: string;
  backend: string;
  message: string;
}

export interface BreakerChangedEvent {
  name: typeof EventName.breakerChanged;
  breaker: string;
  state: 'closed' | 'open' | 'half_open';
  /** Cache breakers: the state before. */
  previous?: 'closed' | 'open' | 'half_open';
  /** Cache breakers: the backend serving from now on. */
  backend?: string;
  /** Cache breakers: the state it starts in (a primary not connected yet at construction), not a change seen while serving. */
  initial?: boolean;
  /** Cache breakers, on closing: how long it was not closed. */
  outageMs?: number;
}

/**
 * A cache breaker acting on its primary's readiness, before any call failed: not ready when the
 * breaker is built (`initial`, it opens), ready again (it closes), connection lost (it opens).
 */
export interface BreakerFollowedPrimaryEvent {
  name: typeof EventName.breakerFollowedPrimary;
  breaker: string;
  backend: string;
  ready: boolean;
  initial: boolean;
}

export interface BackendChangedEvent {
  name: typeof EventName.backendChanged;
  backend: string;
}

/** Emitted by the HTTP adapter once an answer has been sent. */
export interface HttpCompletedEvent {
  name: typeof EventName.httpCompleted;
  method: string;
  status: number;
  /** The X-Cache value, or "NONE" for reserved paths and errors the mirror made itself. */
  outcome: string;
  durationMs: number;
}

export interface SnapshotEvent {
  name:
    | typeof EventName.snapshotCompleted
    | typeof EventName.restoreCompleted
    | typeof EventName.restoreProgress
    | typeof EventName.snapshotFailed;
  store: string;
  entries: number;
  bytes: number;
  durationMs: number;
  outcome: 'ok' | 'failed' | 'skipped' | 'corrupt' | 'in_progress';
  snapshotId?: string;
  reason?: string;
  /** Restore: entries in the snapshot being restored (for progress). */
  total?: number;
  /** Restore: entries written into the cache and still there (`entries` counts every entry read). */
  restored?: number;
  /** Restore: entries the cache dropped to make room while it ran (a memory cache smaller than the snapshot). */
  evicted?: number;
  /** Restore: entries skipped because their TTL ran out since the snapshot. */
  expired?: number;
  /** Restore: entries skipped because the cache already held that key (never overwritten). */
  present?: number;
  /** Restore (outcome ok): snapshots refused before this one was restored. */
  rejected?: number;
  /** Snapshot: what asked for it ("interval", "manual", "shutdown", ...). */
  trigger?: string;
  /** Snapshot (outcome ok): ids of the older snapshots removed by retention. */
  removed?: string[];
  /** snapshot.failed: what failed (for the log line; never sent anywhere else). */
  error?: unknown;
}

export interface SnapshotPruneFailedEvent {
  name: typeof EventName.snapshotPruneFailed;
  store: string;
  /** The snapshot that stays, or "*" when the store could not even list them. */
  snapshotId: string;
  error: unknown;
}

export interface SnapshotRejectedEvent {
  name: typeof EventName.snapshotRejected;
  store: string;
  snapshotId: string;
  /** A SnapshotRejection value, or "unreadable" when the store failed to deliver it. */
  reason: string;
  message: string;
  /** Entries restored from it before the problem was found (each verified; they stay). */
  restoredBeforeRejection: number;
}

export interface RestoreFailedEvent {
  name: typeof EventName.restoreFailed;
  store: string;
  reason: string;
  /** Snapshots refused on the way. */
  rejected: number;
  durationMs: number;
}

export interface RestoreStartedEvent {
  name: typeof EventName.restoreStarted;
  trigger: string;
  store: string;
  backend: string;
  /** empty: no entry at all (a fresh install too); unmarked: entries, but the mark of the last restore is gone. */
  cause: 'empty' | 'unmarked';
}

export interface RestoreMarkFailedEvent {
  name: typeof EventName.restoreMarkFailed;
  error: unknown;
}

/** Why a snapshot or a restore was not attempted. */
export type SnapshotSkipCause =
  /** Another replica holds the lease (this interval's snapshot, or a restore in progress). */
  | 'lease_held'
  /** The lease could not be taken: the cache does not answer. */
  | 'lease_unreachable'
  /** Restore: the cache did not answer whether it lost its data. */
  | 'cache_unreachable'
  /** Restore: the cache is marked restored and not empty. */
  | 'holds_data'
  /** Restore: another replica restored it between the check and the lease. */
  | 'restored_elsewhere';

export interface SnapshotWorkSkippedEvent {
  name: typeof EventName.snapshotWorkSkipped;
  work: 'snapshot' | 'restore';
  trigger: string;
  cause: SnapshotSkipCause;
  /** The cache backend (restore, holds_data). */
  backend?: string;
  error?: unknown;
}

export interface SnapshotLeaseLostEvent {
  name: typeof EventName.snapshotLeaseLost;
  lease: string;
  /** expired: found expired or taken over; unreachable: the renewal failed (the lease may run out). */
  cause: 'expired' | 'unreachable';
  error?: unknown;
}

export interface SnapshotConnectionFailedEvent {
  name: typeof EventName.snapshotConnectionFailed;
  store: string;
  phase: 'open' | 'close';
  error: unknown;
}

export interface SnapshotStopIncompleteEvent {
  name: typeof EventName.snapshotStopIncomplete;
  store: string;
  /** still_running: the store or cache did not let work end in time; restore_cut_short: no final snapshot. */
  cause: 'still_running' | 'restore_cut_short';
}

export interface SnapshotScheduleFailedEvent {
  name: typeof EventName.snapshotScheduleFailed;
  error: unknown;
}

/**
 * A credential with no entry of its own offered GitHub the ETags of bodies stored for other
 * credentials (or of `[]`): "304" = GitHub named one, its body was served; "200" = any other answer
 * from GitHub (a full answer, a 404, a 304 naming none of them); "error" = no usable answer
 * (timeout, connection error, upstream offline, 5xx, rate limited).
 */
export interface CrossCredentialRevalidationEvent {
  name: typeof EventName.crossCredentialRevalidation;
  result: '304' | '200' | 'error';
  /** ETags offered in the If-None-Match list. */
  candidates: number;
  /** The empty-list guess was among them. */
  guess: boolean;
  /** Quota units the attempt saved (1 for a 304: the answer would otherwise have cost one). */
  quotaSaved: number;
  /** On a 304: a stored body ("shared") or the empty list ("guess") was served. */
  served?: 'shared' | 'guess';
}

/** The upstream governor's answer to one call that was about to leave for GitHub. */
export interface GovernorDecidedEvent {
  name: typeof EventName.governorDecided;
  /** admitted (sent), refused (waited upstream.governor.maxWaitMs in vain), held (GitHub asked the credential to wait). */
  result: 'admitted' | 'refused' | 'held';
  /** Time the call waited for its turn. */
  waitedMs: number;
  write: boolean;
  /** Admitted from a lease this replica holds (no round trip to Redis). */
  leased?: boolean;
}

/** Calls waiting for their turn in this replica's governor, after a change. */
export interface GovernorQueueEvent {
  name: typeof EventName.governorQueue;
  depth: number;
}

/** A credential held: GitHub asked it to wait (seen by this replica, or learnt from the shared store). */
export interface GovernorHoldEvent {
  name: typeof EventName.governorHold;
  /** The credential's partition (a keyed hash, never the credential); never a metric label. */
  partition: string;
  /** Time left on the hold. */
  holdMs: number;
  /** answer: this replica saw GitHub's refusal; store: another replica (or an earlier call) did. */
  source: 'answer' | 'store';
}

/** Which event each name carries: the bus adapter types its listeners with it. */
export interface DomainEventMap {
  [EventName.resourceResolved]: ResourceResolvedEvent;
  [EventName.upstreamCalled]: UpstreamCalledEvent;
  [EventName.coalesced]: CoalescedEvent;
  [EventName.cacheOperation]: CacheOperationEvent;
  [EventName.cacheError]: CacheErrorEvent;
  [EventName.cacheCorrupt]: CacheCorruptEvent;
  [EventName.cacheConnection]: CacheConnectionEvent;
  [EventName.cacheCluster]: CacheClusterEvent;
  [EventName.cacheConnectionError]: CacheConnectionErrorEvent;
  [EventName.cacheMisconfigured]: CacheMisconfiguredEvent;
  [EventName.cacheStatsFailed]: CacheStatsFailedEvent;
  [EventName.cacheNearCache]: CacheNearCacheEvent;
  [EventName.breakerChanged]: BreakerChangedEvent;
  [EventName.breakerFollowedPrimary]: BreakerFollowedPrimaryEvent;
  [EventName.backendChanged]: BackendChangedEvent;
  [EventName.httpCompleted]: HttpCompletedEvent;
  [EventName.snapshotCompleted]: SnapshotEvent;
  [EventName.restoreCompleted]: SnapshotEvent;
  [EventName.restoreProgress]: SnapshotEvent;
  [EventName.snapshotFailed]: SnapshotEvent;
  [EventName.crossCredentialRevalidation]: CrossCredentialRevalidationEvent;
  [EventName.snapshotPruneFailed]: SnapshotPruneFailedEvent;
  [EventName.snapshotRejected]: SnapshotRejectedEvent;
  [EventName.restoreFailed]: RestoreFailedEvent;
  [EventName.restoreStarted]: RestoreStartedEvent;
  [EventName.restoreMarkFailed]: RestoreMarkFailedEvent;
  [EventName.snapshotWorkSkipped]: SnapshotWorkSkippedEvent;
  [EventName.snapshotLeaseLost]: SnapshotLeaseLostEvent;
  [EventName.snapshotConnectionFailed]: SnapshotConnectionFailedEvent;
  [EventName.snapshotStopIncomplete]: SnapshotStopIncompleteEvent;
  [EventName.snapshotScheduleFailed]: SnapshotScheduleFailedEvent;
  [EventName.governorDecided]: GovernorDecidedEvent;
  [EventName.governorQueue]: GovernorQueueEvent;
  [EventName.governorHold]: GovernorHoldEvent;
}

export type DomainEventName = keyof DomainEventMap;

export type DomainEvent = DomainEventMap[DomainEventName];
