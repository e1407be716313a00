import { Registry, Histogram, Counter, collectDefaultMetrics } from 'prom-client';
import type { EventEmitter2Bus } from '../events/eventemitter2-bus.adapter.js';
import { EventName, type HttpCompletedEvent } from '../../domain/events/events.js';

/** Buckets fine enough for sub-millisecond hits and multi-second misses alike (seconds). */
export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
  0.75, 1, 1.5, 2.5, 5, 10, 30,
];

export interface PrometheusMetricsOptions {
  /** Collect Node process metrics (heap, event loop lag, GC). */
  processMetrics?: boolean;
}

/**
 * Metrics fed by domain events, in a Registry of their own (several apps may share one process).
 * Label values are bounded: outcome names, status codes, methods. Never a token, a URL or a login.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly requestLatency: Histogram<'cache' | 'status' | 'method'>;
  private readonly requests: Counter<'cache' | 'status' | 'method'>;

  constructor(bus: EventEmitter2Bus, options: PrometheusMetricsOptions = {}) {
    this.requestLatency = new Histogram({
      name: 'request_latency_seconds',
      help: 'Time to answer a client request, by X-Cache outcome, status and method',
      labelNames: ['cache', 'status', 'method'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    this.requests = new Counter({
      name: 'http_request_total',
      help: 'Client requests answered, by X-Cache outcome, status and method',
      labelNames: ['cache', 'status', 'method'],
      registers: [this.registry],
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.unsubscribe.push(
      bus.on(EventName.httpCompleted, (event) => {
        const e = event as HttpCompletedEvent;
        const labels = { cache: e.outcome, status: String(e.status), method: boundedMethod(e.method) };
        this.requestLatency.observe(labels, e.durationMs / 1000);
        this.requests.inc(labels);
      }),
    );
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.registry.clear();
  }
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function boundedMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}
