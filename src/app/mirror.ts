/**
 * One running mirror: it starts and stops what the composition root (container.ts) built for it —
 * the cache connections, the HTTP server, snapshots, the upstream pool — and nothing else.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import { buildContainer, type ContainerOverrides, type MirrorParts } from './container.js';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config/index.js';
import { createLogger } from './logger.js';
import type { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import type { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.adapter.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import type { SnapshotService } from './snapshot-service.js';
import type { ReadinessContribution, ReadinessReport } from './wiring/readiness.js';

export type { MirrorState, ReadinessContribution, ReadinessReport } from './wiring/readiness.js';

export interface MirrorOptions extends ContainerOverrides {
  logger?: Logger;
}

export class Mirror {
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly server: FastifyInstance;
  readonly bus: EventEmitter2Bus;
  /** The cache port the use cases use (timed backend). */
  readonly cache: CachePort;
  readonly metrics: PrometheusMetrics;
  /** Snapshots and restore (undefined with snapshot.store = none). */
  readonly snapshots: SnapshotService | undefined;
  private readonly parts: MirrorParts;
  private address = '';
  private cut = 0;

  constructor(
    readonly config: MirrorConfig,
    options: MirrorOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.log.level);
    this.container = buildContainer(config, this.logger, options);
    this.parts = this.container.resolve<MirrorParts>(TOKENS.MirrorParts);
    ({ server: this.server, bus: this.bus, metrics: this.metrics, snapshots: this.snapshots } = this.parts);
    this.cache = this.parts.cache.port;
  }

  /** Base URL the mirror listens on (after start). */
  get url(): string {
    return this.address;
  }

  /** The /readyz report (Readiness.report). */
  readiness(): ReadinessReport {
    return this.parts.readiness.report();
  }

  /** Adds (or replaces) the part `name` of /readyz (Readiness.add); returns its removal. */
  addReadiness(name: string, part: () => ReadinessContribution): () => void {
    return this.parts.readiness.add(name, part);
  }

  async start(): Promise<string> {
    const { readiness, cache, snapshots, logger } = this.parts;
    // connect Redis first (bounded wait; an unreachable Redis starts the mirror on memory)
    await cache.lifecycle.start();
    const address = await this.server.listen({ port: this.config.server.port, host: this.config.server.host });
    this.address = address.replace('[::1]', '127.0.0.1');
    // restore the cache from a snapshot when it lost its data: /healthz answers meanwhile, /readyz says 503 with progress
    await snapshots?.start();
    if (readiness.state !== 'starting') return this.address;
    readiness.state = 'ready';
    logger.info({ address: this.address, backend: this.cache.backend, upstream: this.config.upstream.url }, 'github-mirror listening');
    return this.address;
  }

  /** Requests the last stop() cut at the end of server.shutdownGraceMs (main exits non-zero when there were any). */
  get requestsCut(): number {
    return this.cut;
  }

  /** Stop accepting, let in-flight requests finish (up to shutdownGraceMs), then close every client. */
  async stop(): Promise<void> {
    const { readiness, cache, snapshots, upstream, metrics, bus, logger } = this.parts;
    if (readiness.state === 'stopping' || readiness.state === 'stopped') return;
    readiness.state = 'stopping';
    let forced = false;
    const grace = setTimeout(() => {
      forced = true;
      const cut = this.server.mirrorInFlight();
      this.cut = cut.length;
      const fields = { graceMs: this.config.server.shutdownGraceMs, cut: cut.length, requests: cut.slice(0, 20) };
      if (cut.length > 0) logger.error(fields, `shutdown grace period over: cutting ${cut.length} request(s) still in flight`);
      else logger.warn(fields, 'shutdown grace period over: closing open connections');
      this.server.server.closeAllConnections();
      void upstream.destroy();
    }, this.config.server.shutdownGraceMs);
    grace.unref();
    // Every step runs whatever the previous one did: a failed or forced step must not leave a
    // connection open behind it (e.g. upstream.close() rejects once the grace period destroyed it).
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['http server', () => this.server.close()],
      // after the last request: the memory backend's final snapshot, then the snapshot clients close
      ['snapshots', () => snapshots?.stop() ?? Promise.resolve()],
      ['upstream pool', () => upstream.close()],
      ['cache connections', () => cache.lifecycle.close()],
    ];
    try {
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (error) {
          // once the grace period destroyed the upstream pool, its close() rejects: expected, no stack
          if (forced && name === 'upstream pool') logger.debug({ err: error, step: name }, 'shutdown step ended by the grace period');
          else logger.warn({ err: error, step: name }, 'shutdown step failed; continuing');
        }
      }
    } finally {
      clearTimeout(grace);
      metrics.close();
      readiness.close();
      bus.removeAllListeners();
      readiness.state = 'stopped';
      logger.info('github-mirror stopped');
    }
  }
}
