/**
 * The cache's log lines, written from its domain events: the Redis adapter's connections, unreadable
 * entries, the cache breaker's transitions. Adapters only emit; this subscriber (built once by the
 * composition root) decides what is worth a line, at which level, and throttles connection errors
 * (the first at once, then at most one line per interval with a count of the ones left out).
 */
import type { EventEmitter2Bus } from '../events/eventemitter2-bus.adapter.js';
import { EventName, type BreakerChangedEvent, type CacheConnectionErrorEvent, type CacheConnectionEvent } from '../../domain/events/events.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import { systemClock } from '../clock/system-clock.adapter.js';

/** pino-compatible subset. */
export interface CacheLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CacheLogOptions {
  clock?: ClockPort;
  /** Connection errors are logged at most once per this interval, with a count of the others. Default 10 s. */
  errorLogIntervalMs?: number;
}

type EventSource = Pick<EventEmitter2Bus, 'on'>;

/** Subscribes to the cache's events; returns the function that unsubscribes. */
export function subscribeCacheLogs(bus: EventSource, logger: CacheLogger, options: CacheLogOptions = {}): () => void {
  const throttled = throttle(logger, options.clock ?? systemClock, options.errorLogIntervalMs ?? 10_000);
  const off = [
    bus.on(EventName.cacheConnection, (event) => connectionChanged(logger, event)),
    bus.on(EventName.cacheConnectionError, (event) => connectionFailed(logger, throttled, event)),
    bus.on(EventName.cacheCluster, ({ backend, state, node, endpoint }) => {
      if (state === 'node_unreachable') logger.warn({ backend, node }, 'redis cluster master not answering: its slots are served from the fallback, call by call');
      else if (state === 'node_back') logger.info({ backend, node }, 'redis cluster master answers again');
      else if (state === 'down') logger.warn({ backend, endpoint }, 'redis cluster is down (CLUSTERDOWN): the cache counts as not ready');
      else logger.info({ backend, endpoint }, 'redis cluster state is ok again');
    }),
    bus.on(EventName.cacheCorrupt, ({ backend, reason, bytes }) => {
      logger.warn({ backend, reason, bytes }, 'unreadable cache entry treated as a miss');
    }),
    bus.on(EventName.cacheMisconfigured, ({ backend }) => {
      logger.warn({ backend }, 'redis key prefix contains "{": in a cluster every key would hash to one slot');
    }),
    bus.on(EventName.cacheStatsFailed, ({ breaker, message }) => {
      logger.warn({ breaker, err: message }, 'cache primary stats failed; reporting the fallback');
    }),
    bus.on(EventName.breakerFollowedPrimary, ({ breaker, backend, ready, initial }) => {
      if (ready) logger.info({ breaker, backend }, 'cache primary ready; closing the breaker');
      else if (initial) logger.info({ breaker, backend }, 'cache primary not connected yet; serving from the fallback until it is');
    }),
    bus.on(EventName.breakerChanged, (event) => breakerChanged(logger, event)),
    bus.on(EventName.cacheNearCache, ({ backend, state, reason, endpoint, message }) => {
      if (state === 'armed') logger.info({ backend, endpoint }, 'redis near cache on (client tracking on, invalidations arriving)');
      else if (state === 'refused') logger.warn({ backend, endpoint, err: message }, 'redis near cache off: Redis refused a command it needs (ACL: subscribe, &__redis__:invalidate, client|tracking?)');
      else logger.info({ backend, endpoint, reason }, 'redis near cache dropped and off until tracking is on again');
    }),
  ];
  return () => {
    for (const unsubscribe of off.splice(0)) unsubscribe();
  };
}

function connectionChanged(logger: CacheLogger, event: CacheConnectionEvent): void {
  const { backend, role, endpoint } = event;
  switch (event.state) {
    case 'ready':
      logger.info({ backend, role, endpoint, topology: event.topology }, 'redis ready');
      break;
    case 'lost':
      logger.warn({ backend, role, endpoint }, 'redis connection lost; reconnecting');
      break;
    case 'unreachable':
      logger.warn({ backend, role, endpoint, err: event.message }, 'redis not reachable at start; serving without it and reconnecting in the background');
      break;
    case 'restarting':
      logger.info({ backend, role, endpoint, attempt: event.attempt }, 'redis connection ended; connecting again');
      break;
  }
}

function connectionFailed(logger: CacheLogger, throttled: (fields: object, msg: string) => void, event: CacheConnectionErrorEvent): void {
  const { backend, role, endpoint, message: err } = event;
  switch (event.source) {
    case 'connection':
      throttled({ backend, role, endpoint, err }, 'redis connection error');
      break;
    case 'node':
      throttled({ backend, role, node: event.node, err }, 'redis cluster node error');
      break;
    case 'reconnect':
      throttled({ backend, role, endpoint, err }, 'redis reconnect failed');
      break;
    case 'quit':
      logger.warn({ backend, err }, 'redis quit failed; disconnecting');
      break;
  }
}

/** Only the cache breakers' transitions (they name the backend serving next); the upstream breaker has none. */
function breakerChanged(logger: CacheLogger, event: BreakerChangedEvent): void {
  // the initial open (primary not connected yet) is no outage: "cache primary not connected yet" says it
  if (event.backend === undefined || event.initial === true) return;
  const { breaker, state, previous, outageMs, backend } = event;
  const fields = outageMs === undefined ? { breaker, state, previous, backend } : { breaker, state, previous, outageMs, backend };
  if (state === 'open') logger.warn(fields, 'cache breaker open: serving from the fallback cache');
  else if (state === 'half_open') logger.info(fields, 'cache breaker half-open: probing the primary');
  else logger.info(fields, 'cache breaker closed: serving from the primary cache');
}

/** Warns the first time at once, then at most once per interval with how many were suppressed. */
function throttle(logger: CacheLogger, clock: ClockPort, intervalMs: number): (fields: object, msg: string) => void {
  let lastAt = -Infinity;
  let suppressed = 0;
  return (fields, msg) => {
    const now = clock.now();
    if (now - lastAt < intervalMs) {
      suppressed += 1;
      return;
    }
    logger.warn({ ...fields, suppressed }, msg);
    lastAt = now;
    suppressed = 0;
  };
}
