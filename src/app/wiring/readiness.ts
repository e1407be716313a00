/**
 * The /readyz report: the mirror's state, the cache backend, and what the readiness tracker heard on
 * the bus (breakers, upstream, restore), plus parts added by name (snapshots, tests).
 */
import type { CachePort } from '../../domain/ports/cache.port.js';
import type { ReadinessTracker } from '../../adapters/readiness/readiness-tracker.adapter.js';

export type MirrorState = 'starting' | 'ready' | 'stopping' | 'stopped';

/** A part of /readyz: any JSON object. `ready: false` in it makes the whole mirror not ready (503). */
export type ReadinessContribution = { ready?: boolean } & Record<string, unknown>;

export interface ReadinessReport {
  ready: boolean;
  state: MirrorState;
  [part: string]: unknown;
}

export class Readiness {
  /** Set by Mirror as it starts and stops. */
  state: MirrorState = 'starting';
  private readonly parts = new Map<string, () => ReadinessContribution>();

  constructor(
    private readonly cache: CachePort,
    private readonly tracker: ReadinessTracker,
    private readonly upstreamUrl: string,
  ) {}

  /**
   * Ready only while serving (503 while starting or stopping). Upstream health is reported, never a
   * reason to be unready: a mirror with GitHub down still serves cached answers. A part that says
   * `ready: false` makes the mirror not ready.
   */
  report(): ReadinessReport {
    const report: ReadinessReport = {
      ready: this.state === 'ready',
      state: this.state,
      cache: { backend: this.cache.backend },
      breakers: this.tracker.breakers(),
      upstream: { url: this.upstreamUrl, ...this.tracker.upstream() },
      restore: this.tracker.restore(),
    };
    for (const [name, part] of this.parts) {
      try {
        const contribution = part();
        report[name] = contribution;
        if (contribution.ready === false) report.ready = false;
      } catch (error) {
        report[name] = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    return report;
  }

  /** Adds (or replaces) the part `name`, computed on every check (keep it cheap and synchronous). Returns its removal. */
  add(name: string, part: () => ReadinessContribution): () => void {
    if (name === 'ready' || name === 'state') throw new RangeError(`readiness part name "${name}" is reserved`);
    this.parts.set(name, part);
    return () => {
      if (this.parts.get(name) === part) this.parts.delete(name);
    };
  }

  close(): void {
    this.tracker.close();
  }
}
