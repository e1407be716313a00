import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import { buildContainer, type CacheLifecycle, type ContainerOverrides } from './container.js';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config/index.js';
import { createLogger } from './logger.js';
import { EventName } from '../domain/events/events.js';
import { buildHttpServer } from '../adapters/http/fastify-server.adapter.js';
import type { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import type { UndiciUpstream } from '../adapters/github/undici-upstream.adapter.js';
import type { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.adapter.js';
import { StatusTracker } from '../adapters/metrics/status-tracker.adapter.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import type { ResolveResource } from '../domain/use-cases/resolve-resource.js';
import type { PassThrough } from '../domain/use-cases/pass-through.js';
import type { AdmitClient } from '../domain/use-cases/admit-client.js';
import { SNAPSHOT_SERVICE, type SnapshotService } from './snapshot-service.js';

export type MirrorState = 'starting' | 'ready' | 'stopping' | 'stopped';

export interface MirrorOptions extends ContainerOverrides {
  logger?: Logger;
}

/** A part of /readyz: any JSON object. `ready: false` in it makes the whole mirror not ready (503). */
export type ReadinessContribution = { ready?: boolean } & Record<string, unknown>;

export interface ReadinessReport {
  ready: boolean;
  state: MirrorState;
  [part: string]: unknown;
}

/** One running mirror: HTTP server, upstream pool, cache, metrics. start() listens; stop() drains and closes everything. */
export class Mirror {
  readonly server: FastifyInstance;
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly bus: EventEmitter2Bus;
  readonly cache: CachePort;
  readonly metrics: PrometheusMetrics;
  /** Breaker states, upstream health and restore progress as the events report them (for /readyz). */
  readonly status: StatusTracker;
  /** Snapshots and restore (undefined with snapshot.store = none). */
  readonly snapshots: SnapshotService | undefined;
  private readonly upstream: UndiciUpstream;
  private readonly cacheLifecycle: CacheLifecycle;
  private readonly readinessParts = new Map<string, () => ReadinessContribution>();
  private state: MirrorState = 'starting';
  private address = '';

  constructor(
    readonly config: MirrorConfig,
    options: MirrorOptions = {},
  ) {
    this.logger = options.logger ?? createLogger(config.log.level);
    this.container = buildContainer(config, this.logger, options);
    this.bus = this.container.resolve<EventEmitter2Bus>(TOKENS.EventBus);
    this.cache = this.container.resolve<CachePort>(TOKENS.Cache);
    this.upstream = this.container.resolve<UndiciUpstream>(TOKENS.Upstream);
    this.metrics = this.container.resolve<PrometheusMetrics>(TOKENS.Metrics);
    this.cacheLifecycle = this.container.resolve<CacheLifecycle>(TOKENS.CacheLifecycle);
    this.status = new StatusTracker(this.bus);
    this.snapshots = this.container.isRegistered(SNAPSHOT_SERVICE) ? (this.container.resolve<SnapshotService | null>(SNAPSHOT_SERVICE) ?? undefined) : undefined;
    if (this.snapshots !== undefined) {
      const snapshots = this.snapshots;
      this.addReadiness('snapshot', () => ({ ...snapshots.readiness() }));
      // Redis back after an outage: restore it at once if it came back empty
      this.bus.on(EventName.backendChanged, (event) => {
        if (this.state !== 'ready' || !('backend' in event) || event.backend !== 'redis') return;
        snapshots.primaryBack().catch((error: unknown) => this.logger.warn({ err: error }, 'restore after reconnect failed'));
      });
    }
    this.server = buildHttpServer(
      {
        resolveResource: this.container.resolve<ResolveResource>(TOKENS.ResolveResource),
        ...(this.container.isRegistered(TOKENS.AdmitClient) ? { admit: admitHook(this.container.resolve<AdmitClient>(TOKENS.AdmitClient)) } : {}),
        passThrough: this.container.resolve<PassThrough>(TOKENS.PassThrough),
        events: this.bus,
        readiness: () => this.readiness(),
        metrics: () => this.metrics.render(),
        logger: this.logger,
      },
      {
        upstreamUrl: config.upstream.url,
        publicUrl: config.server.publicUrl,
        trustProxy: config.server.trustProxy,
        bodyLimitBytes: config.server.bodyLimitBytes,
        rewriteBodyUrls: config.rewrite.bodyUrls,
        requestTimeoutMs: config.server.requestTimeoutMs,
        headersTimeoutMs: config.server.headersTimeoutMs,
        ...(config.server.tls.cert && config.server.tls.key
          ? { tls: { cert: readFileSync(config.server.tls.cert), key: readFileSync(config.server.tls.key) } }
          : {}),
      },
    );
  }

  /** Base URL the mirror listens on (after start). */
  get url(): string {
    return this.address;
  }

  /**
   * The /readyz report: ready only while serving (503 while starting or stopping). Upstream health is
   * reported, never a reason to be unready: a mirror with GitHub down still serves cached answers.
   * Parts added with addReadiness() follow; one that says `ready: false` makes the mirror not ready.
   */
  readiness(): ReadinessReport {
    const report: ReadinessReport = {
      ready: this.state === 'ready',
      state: this.state,
      cache: { backend: this.cache.backend },
      breakers: this.status.breakers(),
      upstream: { url: this.config.upstream.url, ...this.status.upstream() },
      restore: this.status.restore(),
    };
    for (const [name, part] of this.readinessParts) {
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

  /**
   * Adds (or replaces) the part `name` of /readyz, computed on every readiness check (keep it cheap and
   * synchronous). Returns a function that removes it.
   */
  addReadiness(name: string, part: () => ReadinessContribution): () => void {
    if (name === 'ready' || name === 'state') throw new RangeError(`readiness part name "${name}" is reserved`);
    this.readinessParts.set(name, part);
    return () => {
      if (this.readinessParts.get(name) === part) this.readinessParts.delete(name);
    };
  }

  async start(): Promise<string> {
    // connect Redis first (bounded wait; an unreachable Redis starts the mirror on memory)
    await this.cacheLifecycle.start();
    const address = await this.server.listen({ port: this.config.server.port, host: this.config.server.host });
    this.address = address.replace('[::1]', '127.0.0.1');
    // restore the cache from a snapshot when it is empty: /healthz answers meanwhile, /readyz says 503 with progress
    await this.snapshots?.start();
    if (this.state !== 'starting') return this.address;
    this.state = 'ready';
    this.logger.info({ address: this.address, backend: this.cache.backend, upstream: this.config.upstream.url }, 'github-mirror listening');
    return this.address;
  }

  /** Stop accepting, let in-flight requests finish (up to shutdownGraceMs), then close every client. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const grace = setTimeout(() => {
      this.logger.warn({ graceMs: this.config.server.shutdownGraceMs }, 'shutdown grace period over: closing open connections');
      this.server.server.closeAllConnections();
      void this.upstream.destroy();
    }, this.config.server.shutdownGraceMs);
    grace.unref();
    // Every step runs whatever the previous one did: a failed or forced step must not leave a
    // connection open behind it (e.g. upstream.close() rejects once the grace period destroyed it).
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['http server', () => this.server.close()],
      // after the last request: the memory backend's final snapshot, then the snapshot clients close
      ['snapshots', () => this.snapshots?.stop() ?? Promise.resolve()],
      ['upstream pool', () => this.upstream.close()],
      ['cache connections', () => this.cacheLifecycle.close()],
    ];
    try {
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (error) {
          this.logger.warn({ err: error, step: name }, 'shutdown step failed; continuing');
        }
      }
    } finally {
      clearTimeout(grace);
      this.metrics.close();
      this.status.close();
      this.bus.removeAllListeners();
      this.state = 'stopped';
      this.logger.info('github-mirror stopped');
    }
  }
}

/** The allowlist as the HTTP adapter's admission hook. */
function admitHook(admit: AdmitClient): (credential: string | undefined) => Promise<void> {
  return (credential) => admit.execute(credential);
}
