# syntax=docker/dockerfile:1
#
# github-mirror container image.
#
#   docker build -t github-mirror .
#   docker run --rm -p 8080:8080 github-mirror
#
# Two stages: `build` compiles TypeScript with every dependency; `runtime` holds production
# dependencies only, the compiled dist/ and the config files, and runs as a non-root user.
# The runtime stage is what test/deploy/runtime-image.test.ts reproduces (no Docker engine needed):
# it follows the COPY and RUN lines below in a temporary directory, so keep them plain.
#
# Configuration: NODE_ENV=production picks config/production.json (Redis backend); set
# MIRROR_CACHE_SECRET and MIRROR_REDIS_URL, or MIRROR_CACHE_BACKEND=memory for a single replica.
# Prefer MIRROR_CONFIG=/path/file.json over `--config` with `docker run`: the HEALTHCHECK reads the
# same environment as the server (not its arguments) to find the port and scheme.

ARG NODE_VERSION=20

# ---- build: compile src/ to dist/ ---------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, dist/, config/ -------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY config ./config
COPY --from=build /build/dist ./dist
# Writable places for a non-root user: snapshots (snapshot.dir defaults to ./var/snapshots). Group 0
# owns them and may write, so OpenShift's random UIDs (always in group 0) work too.
RUN mkdir -p /app/var/snapshots && chown -R 1000:0 /app/var && chmod -R g=u /app/var
# 1000 is the `node` user of the base image; numeric so that runAsNonRoot can verify it.
USER 1000:0
EXPOSE 8080
# Liveness as the server sees its own configuration (port, TLS): GET /healthz must answer 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "const { loadConfig } = await import('./dist/app/config/index.js'); const { server } = loadConfig({ args: [] }); const tls = server.tls.cert !== ''; const { request } = await import(tls ? 'node:https' : 'node:http'); const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '::1' : server.host; request({ host, port: server.port, path: '/healthz', rejectUnauthorized: false, timeout: 4000 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('timeout', () => process.exit(1)).on('error', () => process.exit(1)).end();"]
# node itself is PID 1: src/app/main.ts handles SIGTERM/SIGINT (drains requests, then exits).
ENTRYPOINT ["node", "--enable-source-maps", "dist/app/main.js"]
