/**
 * The mirror's own paths (a fastify plugin, DESIGN §3): /healthz (liveness, "OK"), /readyz (the
 * readiness report as JSON, 503 while not ready) and /metrics (Prometheus). They answer GET only; any
 * other method on them is refused by the proxy routes, never forwarded.
 */
import { definePlugin, requireOption } from './plugin.js';

export const RESERVED_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export interface ReadinessReport {
  ready: boolean;
  [detail: string]: unknown;
}

export interface ReservedRoutesOptions {
  readiness: () => ReadinessReport;
  metrics: () => Promise<{ contentType: string; body: string }>;
}

export const RESERVED_ROUTES_PLUGIN = 'mirror-reserved-routes';

export const reservedRoutesPlugin = definePlugin<ReservedRoutesOptions>({ name: RESERVED_ROUTES_PLUGIN }, (app, options) => {
  requireOption(RESERVED_ROUTES_PLUGIN, typeof options.readiness === 'function', 'options.readiness must be a function');
  requireOption(RESERVED_ROUTES_PLUGIN, typeof options.metrics === 'function', 'options.metrics must be a function');

  app.get('/healthz', (_request, reply) => {
    void reply.type('text/plain; charset=utf-8').send('OK');
  });
  app.get('/readyz', (_request, reply) => {
    const report = options.readiness();
    void reply.code(report.ready ? 200 : 503).header('cache-control', 'no-store').send(report);
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await options.metrics();
    return reply.type(contentType).send(body);
  });
});
