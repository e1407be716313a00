/**
 * The upstream chain, built from the config: undici (keep-alive pool, timeouts), wrapped by the
 * upstream breaker (OFFLINE_* at once while GitHub is down), wrapped by the upstream governor
 * (GitHub's secondary limits per credential, fleet-wide through Redis when the cache is Redis; a held
 * credential is answered without reaching GitHub or the breaker). close()/destroy() of the outermost
 * object go down the chain.
 */
import type { MirrorConfig } from '../config/index.js';
import type { UpstreamPort } from '../../domain/ports/upstream.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { KeyHasherPort } from '../../domain/ports/key-hasher.port.js';
import { UndiciUpstream } from '../../adapters/github/undici-upstream.adapter.js';
import { UpstreamBreaker, type UpstreamBreakerState } from '../../adapters/github/upstream-breaker.adapter.js';
import { GovernedUpstream } from '../../adapters/github/governed-upstream.adapter.js';
import { createGovernor, type SharedGovernorBackend } from '../../adapters/governor/create-governor.js';
import type { EventEmitter2Bus } from '../../adapters/events/eventemitter2-bus.adapter.js';
import type { Logger } from 'pino';

/** The chain as the app holds it: the port, plus closing its connections (gracefully or at once). */
export interface UpstreamWiring {
  port: UpstreamPort;
  /** Waits for calls in flight, then closes the pool. */
  close(): Promise<void>;
  /** Closes the pool now, cutting calls in flight (the end of the shutdown grace period). */
  destroy(): Promise<void>;
  /** The upstream breaker's state now, when it is on (for /readyz and /metrics before any change is heard). */
  breakers: Record<string, () => UpstreamBreakerState>;
}

export interface UpstreamWiringDeps {
  events: EventEmitter2Bus;
  keys: KeyHasherPort;
  clock: ClockPort;
  logger: Logger;
  /** The cache's Redis, when the governor should count there (CacheWiring.governor). */
  governorBackend: SharedGovernorBackend | undefined;
}

export function buildUpstream(config: MirrorConfig, deps: UpstreamWiringDeps): UpstreamWiring {
  const undici = new UndiciUpstream({
    url: config.upstream.url,
    timeoutMs: config.upstream.timeoutMs,
    connectTimeoutMs: config.upstream.connectTimeoutMs,
    connections: config.upstream.connections,
    writeConnections: config.upstream.writeConnections,
    maxBodyBytes: config.upstream.maxBodyBytes,
  });
  const { enabled, ...breakerOptions } = config.upstream.breaker;
  const guarded = enabled ? new UpstreamBreaker(undici, deps.events, breakerOptions) : undici;
  const governor = createGovernor({
    ...config.upstream.governor,
    clock: deps.clock,
    events: deps.events,
    slotTtlMs: Math.max(60_000, 3 * config.upstream.timeoutMs),
    ...(deps.governorBackend === undefined ? {} : { shared: deps.governorBackend }),
    onRedisError: (error) => deps.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'upstream governor: Redis failing, counting in memory'),
  });
  const governed = new GovernedUpstream(guarded, deps.keys, deps.clock, governor);
  const breakers: UpstreamWiring['breakers'] = guarded instanceof UpstreamBreaker ? { upstream: () => guarded.state } : {};
  return { port: governed, close: () => governed.close(), destroy: () => governed.destroy(), breakers };
}
