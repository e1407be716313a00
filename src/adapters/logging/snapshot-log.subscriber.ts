/**
 * The log lines of snapshots and restores, written from the snapshot.* domain events (the use cases and
 * the snapshot service never log). Messages, levels and fields are the ones docs/snapshots.md lists
 * and operators grep for; change them only with the docs.
 */
import type { Logger } from 'pino';
import type { EventEmitter2Bus } from '../events/eventemitter2-bus.adapter.js';
import { EventName, type SnapshotSkipCause, type SnapshotWorkSkippedEvent } from '../../domain/events/events.js';

export type SnapshotLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

type SkipLine = (log: SnapshotLogger, e: SnapshotWorkSkippedEvent) => void;

/** One line per way a snapshot or a restore is not attempted. */
const SKIPPED: Record<SnapshotWorkSkippedEvent['work'], Partial<Record<SnapshotSkipCause, SkipLine>>> = {
  snapshot: {
    lease_unreachable: (log, e) => log.warn({ err: e.error, trigger: e.trigger }, 'snapshot skipped: the lease could not be taken (cache unreachable)'),
    lease_held: (log, e) => log.debug({ trigger: e.trigger }, 'snapshot skipped: another replica holds this interval’s lease'),
  },
  restore: {
    cache_unreachable: (log, e) => log.warn({ err: e.error, trigger: e.trigger }, 'restore skipped: cannot tell whether the cache lost its data (cache unreachable)'),
    // every interval checks: saying so each time would only be noise
    holds_data: (log, e) => {
      if (e.trigger !== 'interval') log.info({ trigger: e.trigger, backend: e.backend }, 'cache holds its data: no restore');
    },
    lease_unreachable: (log, e) => log.warn({ err: e.error, trigger: e.trigger }, 'restore skipped: the lease could not be taken (cache unreachable)'),
    lease_held: (log, e) => log.info({ trigger: e.trigger }, 'restore skipped: another replica is restoring the shared cache'),
    restored_elsewhere: (log, e) => log.info({ trigger: e.trigger }, 'restore skipped: another replica has just restored the shared cache'),
  },
};

/** Subscribes the snapshot log lines to `bus`; returns the function that unsubscribes them. */
export function subscribeSnapshotLogs(bus: Pick<EventEmitter2Bus, 'on'>, log: SnapshotLogger): () => void {
  const off = [
    bus.on(EventName.snapshotCompleted, (e) => {
      if (e.outcome === 'ok') {
        const fields = { trigger: e.trigger, store: e.store, snapshotId: e.snapshotId, entries: e.entries, bytes: e.bytes, durationMs: Math.round(e.durationMs), removed: e.removed };
        log.info(fields, 'snapshot taken');
      } else log.info({ trigger: e.trigger, store: e.store, reason: e.reason }, 'snapshot skipped');
    }),
    bus.on(EventName.snapshotPruneFailed, (e) => log.warn({ err: e.error, snapshotId: e.snapshotId }, 'old snapshot could not be removed')),
    bus.on(EventName.snapshotFailed, (e) => {
      log.error({ trigger: e.trigger, store: e.store, reason: e.reason, err: e.error }, `snapshot failed: ${e.reason}`);
      if (e.trigger === 'shutdown') log.error({ store: e.store, reason: e.reason }, 'final snapshot at shutdown failed');
    }),
    bus.on(EventName.snapshotWorkSkipped, (e) => SKIPPED[e.work][e.cause]?.(log, e)),
    bus.on(EventName.snapshotLeaseLost, (e) => {
      if (e.cause === 'expired') log.warn({ lease: e.lease }, 'lease lost while working (expired or taken over)');
      else log.warn({ err: e.error, lease: e.lease }, 'lease renewal failed');
    }),
    bus.on(EventName.restoreStarted, (e) =>
      log.info(
        { trigger: e.trigger, store: e.store, backend: e.backend, cause: e.cause },
        e.cause === 'empty' ? 'cache is empty: restoring the newest snapshot' : 'cache lost its data (the restored mark is gone): restoring the newest snapshot',
      ),
    ),
    bus.on(EventName.snapshotRejected, (e) =>
      log.error(
        { store: e.store, snapshotId: e.snapshotId, reason: e.reason, restoredBeforeRejection: e.restoredBeforeRejection },
        `snapshot ${e.snapshotId} rejected (${e.reason}): ${e.message}; trying the next older one`,
      ),
    ),
    bus.on(EventName.restoreCompleted, (e) => {
      // the other outcomes are one snapshot tried: snapshot.rejected and snapshot.restore_failed say those
      if (e.outcome === 'ok') {
        const fields = { store: e.store, snapshotId: e.snapshotId, restored: e.restored, evicted: e.evicted, expired: e.expired, present: e.present, entries: e.entries };
        log.info({ ...fields, durationMs: Math.round(e.durationMs), rejected: e.rejected }, 'snapshot restored');
      } else if (e.outcome === 'skipped') log.info({ store: e.store, reason: e.reason }, `restore skipped: ${e.reason}`);
    }),
    bus.on(EventName.restoreFailed, (e) =>
      log.error({ store: e.store, reason: e.reason, rejected: e.rejected }, `restore failed: ${e.reason}; starting with the cache as it is`),
    ),
    bus.on(EventName.restoreMarkFailed, (e) => log.warn({ err: e.error }, 'the restored mark could not be written; the next check restores again')),
    bus.on(EventName.snapshotConnectionFailed, (e) => {
      if (e.phase === 'open') log.warn({ err: e.error, store: e.store }, 'snapshot: cache connection not ready at start; retrying in the background');
      else log.warn({ err: e.error }, 'closing the snapshot clients failed');
    }),
    bus.on(EventName.snapshotStopIncomplete, (e) => {
      if (e.cause === 'still_running') log.warn({ store: e.store }, 'stop: a snapshot or restore still runs (store or cache not answering); not waiting for it');
      else log.warn({ store: e.store }, 'no final snapshot: the restore at start was cut short, the cache holds only part of the last snapshot');
    }),
    bus.on(EventName.snapshotScheduleFailed, (e) => log.error({ err: e.error }, 'snapshot schedule: unexpected error')),
  ];
  return () => {
    for (const unsubscribe of off) unsubscribe();
  };
}
