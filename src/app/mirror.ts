import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import { buildContainer, type ContainerOverrides } from './container.js';
import { TOKENS } from './tokens.js';
import type { MirrorConfig } from './config.js';
import { createLogger } from './logger.js';
import { buildHttpServer } from '../adapters/http/fastify-server.adapter.js';
import type { EventEmitter2Bus } from '../adapters/events/eventemitter2-bus.adapter.js';
import type { UndiciUpstream } from '../adapters/github/undici-upstream.adapter.js';
import type { PrometheusMetrics } from '../adapters/metrics/prometheus-metrics.adapter.js';
import type { CachePort } from '../domain/ports/cache.port.js';
import type { ResolveResource } from '../domain/use-cases/resolve-resource.js';
import type { PassThrough } from '../domain/use-cases/pass-through.js';

export type MirrorState = 'starting' | 'ready' | 'stopping' | 'stopped';

export interface MirrorOptions extends ContainerOverrides {
  logger?: Logger;
}

/** One running mirror: HTTP server, upstream pool, cache, metrics. start() listens; stop() drains and closes everything. */
export class Mirror {
  readonly server: FastifyInstance;
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly bus: EventEmitter2Bus;
  readonly cache: CachePort;
  readonly metrics: PrometheusMetrics;
  private readonly upstream: UndiciUpstream;
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
    this.server = buildHttpServer(
      {
        resolveResource: this.container.resolve<ResolveResource>(TOKENS.ResolveResource),
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

  readiness(): { ready: boolean; state: MirrorState; cache: { backend: string }; upstream: { url: string } } {
    return {
      ready: this.state === 'ready',
      state: this.state,
      cache: { backend: this.cache.backend },
      upstream: { url: this.config.upstream.url },
    };
  }

  async start(): Promise<string> {
    const address = await this.server.listen({ port: this.config.server.port, host: this.config.server.host });
    this.address = address.replace('[::1]', '127.0.0.1');
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
    try {
      await this.server.close();
      await this.upstream.close();
    } finally {
      clearTimeout(grace);
      this.metrics.close();
      this.bus.removeAllListeners();
      this.state = 'stopped';
      this.logger.info('github-mirror stopped');
    }
  }
}
