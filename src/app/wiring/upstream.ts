/**
 * The upstream chain, built from the config: undici (keep-alive pool, timeouts), wrapped by the
 * upstream breaker (OFFLINE_* at once while GitHub is down), wrapped by the secondary-limit gate (a
 * held credential is answered 429 without reaching GitHub or the breaker). close()/destroy() of the
 * outermost object go down the chain.
 */
import type { MirrorConfig } from '../config/index.js';
import type { UpstreamPort } from '../../domain/ports/upstream.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import type { KeyHasherPort } from '../../domain/ports/key-hasher.port.js';
import { UndiciUpstream } from '../../adapters/github/undici-upstream.adapter.js';
import { UpstreamBreaker, type UpstreamBreakerState } from '../../adapters/github/upstream-breaker.adapter.js';
import { SecondaryLimitGate } from '../../adapters/github/secondary-limit-gate.adapter.js';

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
  events: EventBusPort;
  keys: KeyHasherPort;
  clock: ClockPort;
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
  const gate = new SecondaryLimitGate(guarded, deps.keys, deps.clock);
  const breakers: UpstreamWiring['breakers'] = guarded instanceof UpstreamBreaker ? { upstream: () => guarded.state } : {};
  return { port: gate, close: () => gate.close(), destroy: () => gate.destroy(), breakers };
}
