/** The HTTP edge, built from the config: the fastify server with its routes, TLS when configured. */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { MirrorConfig } from '../config/index.js';
import { buildHttpServer, type HttpAdapterDeps } from '../../adapters/http/fastify-server.adapter.js';

export function buildHttp(config: MirrorConfig, deps: HttpAdapterDeps): FastifyInstance {
  return buildHttpServer(deps, {
    upstreamUrl: config.upstream.url,
    publicUrl: config.server.publicUrl,
    trustProxy: config.server.trustProxy,
    bodyLimitBytes: config.server.bodyLimitBytes,
    bodyTimeoutMs: config.server.bodyTimeoutMs,
    rewriteBodyUrls: config.rewrite.bodyUrls,
    logRequests: config.log.requests,
    requestTimeoutMs: config.server.requestTimeoutMs,
    headersTimeoutMs: config.server.headersTimeoutMs,
    ...(config.server.tls.cert && config.server.tls.key ? { tls: { cert: readFileSync(config.server.tls.cert), key: readFileSync(config.server.tls.key) } } : {}),
  });
}
