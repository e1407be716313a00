/**
 * ioredis settings for the three topologies (standalone with an optional reader, Sentinel, Cluster),
 * all set to fail fast: no offline queue, one retry per request, a command timeout, lazy connect,
 * reconnect with capped exponential backoff forever; TLS from the options or a rediss:// URL.
 * Pure: redis-client.ts builds the clients from this plan and supervises them.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { parseRedisUrl, redactRedisUrl, type ParsedUrl } from './redis-url.js';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

export interface RedisConnectionOptions {
  /** redis://[user:password@]host[:port][/db] or rediss://... (TLS). Standalone, and the default host for the others. */
  url?: string;
  /** A read-only endpoint (ElastiCache reader, a replica) used for lookups. Standalone only. */
  readerUrl?: string;
  /** ACL user and password; they override the ones in the URLs. */
  username?: string;
  password?: string;
  /** TLS for the data connections: true, or node:tls options. A rediss:// URL turns it on too. */
  tls?: boolean | ConnectionOptions;
  sentinels?: HostPort[];
  sentinelName?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  clusterNodes?: HostPort[];
  /** Cluster reads: 'master' (default), 'slave' or 'all'. */
  scaleReads?: 'master' | 'slave' | 'all';
  /** Each command rejects after this long (a hung Redis). */
  commandTimeoutMs: number;
  /** A TCP/TLS connect attempt gives up after this long. Default max(1000, 5 × commandTimeoutMs). */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect backoff. Default 2000 ms. */
  maxReconnectDelayMs?: number;
}

/** What to build: the settings of each client, and where it points without credentials. */
export type RedisClientPlan =
  | { topology: 'cluster'; nodes: HostPort[]; cluster: ClusterOptions; description: string }
  | { topology: 'sentinel' | 'standalone'; writer: RedisOptions; reader?: RedisOptions; description: string };

/** Capped exponential backoff with jitter: 50, 100, 200 ... max ms; never gives up. */
export function reconnectDelay(attempt: number, maxMs = 2000): number {
  const base = Math.min(maxMs, 50 * 2 ** Math.min(Math.max(attempt - 1, 0), 16));
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

function topologyOf(options: RedisConnectionOptions): RedisTopology {
  if (options.clusterNodes !== undefined && options.clusterNodes.length > 0) return 'cluster';
  if (options.sentinels !== undefined && options.sentinels.length > 0) return 'sentinel';
  return 'standalone';
}

function tlsOptions(tls: boolean | ConnectionOptions | undefined, fromUrl: boolean): ConnectionOptions | undefined {
  if (typeof tls === 'object') return tls;
  if (tls === true || (tls === undefined && fromUrl)) return {};
  return undefined;
}

function failFast(options: RedisConnectionOptions): RedisOptions {
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs ?? Math.max(1000, options.commandTimeoutMs * 5),
    retryStrategy: (times: number) => reconnectDelay(times, maxDelay),
    // a failover turned our master into a replica: reconnect (Sentinel / DNS then lead to the new one)
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
    enableAutoPipelining: false,
  };
}

/** The ioredis settings for the configured topology (nothing is built or connected). */
export function planRedisClients(options: RedisConnectionOptions): RedisClientPlan {
  const topology = topologyOf(options);
  const base = failFast(options);
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  const fromUrl = options.url === undefined ? undefined : parseRedisUrl(options.url);
  const username = options.username ?? fromUrl?.username;
  const password = options.password ?? fromUrl?.password;
  const tls = tlsOptions(options.tls, fromUrl?.tls ?? false);
  const auth: RedisOptions = {};
  if (username !== undefined) auth.username = username;
  if (password !== undefined) auth.password = password;
  if (tls !== undefined) auth.tls = tls;

  if (topology === 'cluster') {
    const nodes = options.clusterNodes ?? [];
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      scaleReads: options.scaleReads ?? 'master',
      clusterRetryStrategy: (times: number) => reconnectDelay(times, maxDelay),
      slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs * 2),
      // fail fast: a command for a lost master or a cluster that is down fails at once (the breaker
      // serves it from memory) instead of being retried for up to maxRedirections x 100 ms
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      redisOptions: {
        ...auth,
        maxRetriesPerRequest: base.maxRetriesPerRequest ?? 1,
        commandTimeout: options.commandTimeoutMs,
        connectTimeout: base.connectTimeout ?? 1000,
        enableAutoPipelining: false,
      },
    };
    // TLS endpoints (ElastiCache) need their own host names for certificate checks
    if (tls !== undefined) clusterOptions.dnsLookup = (address, callback) => callback(null, address);
    return {
      topology,
      nodes,
      cluster: clusterOptions,
      description: `cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')}${tls ? ' (tls)' : ''}`,
    };
  }

  if (topology === 'sentinel') {
    const name = options.sentinelName;
    if (name === undefined || name === '') throw new TypeError('redis: sentinels need a sentinelName');
    const sentinels = options.sentinels ?? [];
    const sentinelOptions: RedisOptions = {
      ...base,
      ...auth,
      sentinels,
      name,
      role: 'master',
      failoverDetector: true,
      sentinelRetryStrategy: (times: number) => reconnectDelay(times, maxDelay),
      sentinelCommandTimeout: Math.max(500, options.commandTimeoutMs),
    };
    if (options.sentinelUsername !== undefined) sentinelOptions.sentinelUsername = options.sentinelUsername;
    if (options.sentinelPassword !== undefined) sentinelOptions.sentinelPassword = options.sentinelPassword;
    if (tls !== undefined) {
      sentinelOptions.enableTLSForSentinelMode = true;
      sentinelOptions.sentinelTLS = tls;
    }
    if (fromUrl?.db !== undefined) sentinelOptions.db = fromUrl.db;
    return {
      topology,
      writer: sentinelOptions,
      description: `sentinel ${name}@${sentinels.map((s) => `${s.host}:${s.port}`).join(',')}${tls ? ' (tls)' : ''}`,
    };
  }

  if (fromUrl === undefined || options.url === undefined) throw new TypeError('redis: a url is needed (or sentinels / clusterNodes)');
  const standalone = (p: ParsedUrl, user: string | undefined, pass: string | undefined): RedisOptions => {
    const o: RedisOptions = { ...base, host: p.host, port: p.port };
    if (user !== undefined) o.username = user;
    if (pass !== undefined) o.password = pass;
    if (p.db !== undefined) o.db = p.db;
    const t = tlsOptions(options.tls, p.tls);
    if (t !== undefined) o.tls = isIP(p.host) === 0 ? { servername: p.host, ...t } : t;
    return o;
  };
  const plan: RedisClientPlan & { topology: 'standalone' } = {
    topology,
    writer: standalone(fromUrl, username, password),
    description: redactRedisUrl(options.url),
  };
  if (options.readerUrl !== undefined && options.readerUrl !== '') {
    const r = parseRedisUrl(options.readerUrl);
    // the reader uses the writer's credentials unless its own URL has some
    plan.reader = standalone(r, options.username ?? r.username ?? username, options.password ?? r.password ?? password);
    plan.description += ` (reader ${redactRedisUrl(options.readerUrl)})`;
  }
  return plan;
}

