/**
 * Configuration (DESIGN.md §5): one convict schema, loaded from (lowest first) schema defaults,
 * config/default.json, config/<NODE_ENV>.json, the file named by `--config FILE` or MIRROR_CONFIG,
 * and environment variables (MIRROR_*, plus the Python ghmirror's variables as aliases).
 *
 * Strict: unknown keys and bad values fail, and every problem is reported at once in one
 * ConfigError. Adapters never see convict: `loadConfig` returns a plain typed object.
 * process.env is never mutated; tests pass `{ env, args }`.
 */
import convict from 'convict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './config.errors.js';

export { ConfigError, isConfigError } from './config.errors.js';

// ---------------------------------------------------------------------------------------------
// The typed result
// ---------------------------------------------------------------------------------------------

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const CACHE_BACKENDS = ['memory', 'redis'] as const;
export const REDIS_SCALE_READS = ['master', 'slave', 'all'] as const;
export const SNAPSHOT_STORES = ['none', 'file', 's3'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type CacheBackend = (typeof CACHE_BACKENDS)[number];
export type RedisScaleReads = (typeof REDIS_SCALE_READS)[number];
export type SnapshotStoreKind = (typeof SNAPSHOT_STORES)[number];

export interface HostPort {
  host: string;
  port: number;
}

export interface BreakerConfig {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
}

export interface MirrorConfig {
  server: {
    port: number;
    host: string;
    /** '' = derived from the request. Never ends with '/'. */
    publicUrl: string;
    trustProxy: boolean;
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    shutdownGraceMs: number;
    tls: { cert: string; key: string };
  };
  log: { level: LogLevel };
  upstream: {
    /** Never ends with '/'. */
    url: string;
    timeoutMs: number;
    connectTimeoutMs: number;
    connections: number;
    maxBodyBytes: number;
    breaker: BreakerConfig & { enabled: boolean };
    governor: GovernorConfig;
  };
  cache: {
    backend: CacheBackend;
    memory: { maxBytes: number };
    ttlSeconds: number;
    maxEntryBytes: number;
    freshnessMs: number;
    coalesce: { waitMs: number };
    secret: string;
    redis: {
      url: string;
      /** '' = read from `url`. */
      readerUrl: string;
      username: string;
      password: string;
      tls: boolean;
      sentinels: HostPort[];
      sentinelName: string;
      sentinelPassword: string;
      clusterNodes: HostPort[];
      scaleReads: RedisScaleReads;
      keyPrefix: string;
      commandTimeoutMs: number;
    };
    breaker: BreakerConfig & { timeoutMs: number };
  };
  auth: {
    /** [] = anyone with a token GitHub accepts (or no token). */
    allowedUsers: string[];
    validationTtlSeconds: number;
  };
  rewrite: { bodyUrls: boolean };
  snapshot: {
    store: SnapshotStoreKind;
    dir: string;
    intervalSeconds: number;
    retain: number;
    s3: { bucket: string; prefix: string; region: string; endpoint: string; forcePathStyle: boolean };
  };
}

// ---------------------------------------------------------------------------------------------
// Formats (registered with convict; each has a one-line description for the docs)
// ---------------------------------------------------------------------------------------------

interface FormatDefinition {
  doc: string;
  validate: (value: unknown) => void;
  coerce?: (raw: string) => unknown;
}

function fail(message: string): never {
  throw new Error(message);
}

function parseInteger(raw: string): number | string {
  const text = raw.trim();
  return /^[+-]?\d+$/.test(text) ? Number(text) : raw;
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

function parseBoolean(raw: string): boolean | string {
  const word = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return raw;
}

function integerFormat(min: number, max: number, doc: string, message: string): FormatDefinition {
  return {
    doc,
    coerce: parseInteger,
    validate(value) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) fail(message);
    },
  };
}

function enumFormat(values: readonly string[]): FormatDefinition {
  const list = values.join(', ');
  return {
    doc: `one of: ${list}`,
    coerce: (raw) => raw.trim().toLowerCase(),
    validate(value) {
      if (typeof value !== 'string' || !values.includes(value)) fail(`must be one of ${list}`);
    },
  };
}

/** Removes trailing slashes so `${url}${path}` never doubles them. */
function trimUrl(raw: string): string {
  return raw.trim().replace(/\/+$/, '');
}

function httpUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.hostname === '') return 'must name a host';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (value.includes('?') || value.includes('#')) return 'must not have a query string or fragment';
  return undefined;
}

function redisUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a redis:// or rediss:// URL';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL';
  if (url.hostname === '') return 'must name a host';
  return undefined;
}

/** Parses "host:port" or "[v6::addr]:port"; undefined when it is not one. */
export function parseHostPort(entry: string): HostPort | undefined {
  const text = entry.trim();
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^\s:[\]]+):(\d{1,5})$/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1], port };
}

function isHostPortObject(entry: unknown): entry is HostPort {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return false;
  const keys = Object.keys(entry);
  const { host, port } = entry as Record<string, unknown>;
  return (
    keys.every((k) => k === 'host' || k === 'port') &&
    typeof host === 'string' &&
    /^[^\s]+$/.test(host) &&
    typeof port === 'number' &&
    Number.isInteger(port) &&
    port >= 1 &&
    port <= 65535
  );
}

function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = `'${JSON.stringify(value).slice(1, -1)}'`;
  else if (value === undefined) text = 'nothing';
  else text = JSON.stringify(value) ?? typeof value;
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

const LOGIN = /^[^\s,:]{1,100}$/;

const FORMATS = {
  'tcp-port': integerFormat(0, 65535, 'integer 0–65535 (0 = any free port)', 'must be an integer from 0 to 65535'),
  'positive-int': integerFormat(1, Number.MAX_SAFE_INTEGER, 'integer ≥ 1', 'must be a whole number greater than 0'),
  'non-negative-int': integerFormat(0, Number.MAX_SAFE_INTEGER, 'integer ≥ 0', 'must be a whole number, 0 or more'),
  percentage: integerFormat(1, 100, 'integer 1–100', 'must be a whole number from 1 to 100'),
  flag: {
    doc: 'boolean (env: true/false, 1/0, yes/no, on/off)',
    coerce: parseBoolean,
    validate(value) {
      if (typeof value !== 'boolean') fail('must be true or false');
    },
  },
  text: {
    doc: 'string',
    validate(value) {
      if (typeof value !== 'string') fail('must be a string');
    },
  },
  'nonempty-text': {
    doc: 'non-empty string',
    coerce: (raw) => raw.trim(),
    validate(value) {
      if (typeof value !== 'string' || value.trim() === '') fail('must be a non-empty string');
    },
  },
  'http-url': {
    doc: 'http(s) URL without query, fragment or credentials; a trailing slash is removed',
    coerce: trimUrl,
    validate(value) {
      const problem = httpUrlProblem(value);
      if (problem) fail(problem);
    },
  },
  'optional-http-url': {
    doc: 'empty, or an http(s) URL without query, fragment or credentials; a trailing slash is removed',
    coerce: trimUrl,
    validate(value) {
      if (value === '') return;
      const problem = httpUrlProblem(value);
      if (problem) fail(problem);
    },
  },
  'redis-url': {
    doc: 'redis:// or rediss:// URL',
    coerce: (raw) => raw.trim(),
    validate(value) {
      const problem = redisUrlProblem(value);
      if (problem) fail(problem);
    },
  },
  'optional-redis-url': {
    doc: 'empty, or a redis:// or rediss:// URL',
    coerce: (raw) => raw.trim(),
    validate(value) {
      if (value === '') return;
      const problem = redisUrlProblem(value);
      if (problem) fail(problem);
    },
  },
  'host-port-list': {
    doc: 'list of `{"host", "port"}` or `"host:port"` (env: `host:port,host:port`)',
    coerce: (raw) =>
      raw
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '')
        .map((entry) => parseHostPort(entry) ?? entry),
    validate(value) {
      if (!Array.isArray(value)) fail('must be a list of host:port');
      value.forEach((entry: unknown, index) => {
        const ok = typeof entry === 'string' ? parseHostPort(entry) !== undefined : isHostPortObject(entry);
        if (!ok) fail(`entry ${index + 1} (${describeValue(entry)}) is not host:port with a port from 1 to 65535`);
      });
    },
  },
  'login-list': {
    doc: 'list of GitHub logins (env: comma-separated)',
    coerce: (raw) =>
      raw
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    validate(value) {
      if (!Array.isArray(value)) fail('must be a list of GitHub logins');
      value.forEach((entry: unknown, index) => {
        if (typeof entry !== 'string' || !LOGIN.test(entry)) {
          fail(`entry ${index + 1} (${describeValue(entry)}) is not a GitHub login`);
        }
      });
    },
  },
  'log-level': enumFormat(LOG_LEVELS),
  'cache-backend': enumFormat(CACHE_BACKENDS),
  'redis-scale-reads': enumFormat(REDIS_SCALE_READS),
  'snapshot-store': enumFormat(SNAPSHOT_STORES),
} satisfies Record<string, FormatDefinition>;

export type ConfigFormat = keyof typeof FORMATS;

for (const [name, definition] of Object.entries(FORMATS) as Array<[string, FormatDefinition]>) {
  convict.addFormat({
    name,
    validate: (value: unknown) => definition.validate(value),
    ...(definition.coerce ? { coerce: definition.coerce } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

export interface ConfigKeySpec {
  doc: string;
  format: ConfigFormat;
  default: unknown;
  env: string;
  sensitive?: boolean;
}
export interface ConfigSchemaTree {
  [name: string]: ConfigKeySpec | ConfigSchemaTree;
}

// ---------------------------------------------------------------------------------------------
// upstream.governor (issue 15): GitHub's secondary rate limits per credential, shared by the fleet.
// One block (type + schema), referenced from MirrorConfig.upstream and configSchema.upstream.
// ---------------------------------------------------------------------------------------------

export interface GovernorConfig {
  enabled: boolean;
  maxConcurrent: number;
  pointsPerMinute: number;
  writeSpacingMs: number;
  maxWaitMs: number;
}

const governorSchema = {
  enabled: {
    doc: 'Upstream governor: keeps each credential under GitHub\'s secondary rate limits across every replica (through Redis with the redis backend). Off = no concurrency, points or spacing limits; Retry-After holds still apply.',
    format: 'flag',
    default: true,
    env: 'MIRROR_UPSTREAM_GOVERNOR_ENABLED',
  },
  maxConcurrent: {
    doc: 'Most calls in flight to GitHub per credential, fleet-wide (GitHub allows 100, REST and GraphQL together).',
    format: 'positive-int',
    default: 50,
    env: 'MIRROR_UPSTREAM_GOVERNOR_MAX_CONCURRENT',
  },
  pointsPerMinute: {
    doc: 'Most points per credential in any minute, fleet-wide: GET/HEAD/OPTIONS cost 1, other methods 5 (GitHub allows 900 for REST).',
    format: 'positive-int',
    default: 800,
    env: 'MIRROR_UPSTREAM_GOVERNOR_POINTS_PER_MINUTE',
  },
  writeSpacingMs: {
    doc: 'Least time between two writes (methods other than GET/HEAD/OPTIONS) of a credential, fleet-wide; GitHub asks for 1 s. 0 = no spacing.',
    format: 'non-negative-int',
    default: 1000,
    env: 'MIRROR_UPSTREAM_GOVERNOR_WRITE_SPACING_MS',
  },
  maxWaitMs: {
    doc: 'Longest a call over budget waits for its turn (first come, first served per credential); then 429 GOVERNOR_WAIT_EXCEEDED with Retry-After, or the cached body (RATE_LIMITED_HIT). 0 = never wait.',
    format: 'non-negative-int',
    default: 10000,
    env: 'MIRROR_UPSTREAM_GOVERNOR_MAX_WAIT_MS',
  },
} satisfies ConfigSchemaTree;

export const configSchema = {
  server: {
    port: {
      doc: 'TCP port the mirror listens on. 0 picks a free port (tests).',
      format: 'tcp-port',
      default: 8080,
      env: 'MIRROR_PORT',
    },
    host: {
      doc: 'Address the mirror listens on.',
      format: 'nonempty-text',
      default: '0.0.0.0',
      env: 'MIRROR_HOST',
    },
    publicUrl: {
      doc:
        'Base URL clients use to reach the mirror; Link headers and body URLs that point at the upstream are ' +
        'rewritten to it. Empty = derived from each request (Host header, or X-Forwarded-* with trustProxy).',
      format: 'optional-http-url',
      default: '',
      env: 'MIRROR_PUBLIC_URL',
    },
    trustProxy: {
      doc: 'Trust X-Forwarded-Proto / X-Forwarded-Host when deriving the public URL (behind a load balancer).',
      format: 'flag',
      default: false,
      env: 'MIRROR_TRUST_PROXY',
    },
    bodyLimitBytes: {
      doc: 'Largest request body accepted from a client (non-GET requests are passed through).',
      format: 'positive-int',
      default: 26214400,
      env: 'MIRROR_BODY_LIMIT_BYTES',
    },
    requestTimeoutMs: {
      doc: 'Time a client has to send a whole request (protects against slow clients).',
      format: 'positive-int',
      default: 30000,
      env: 'MIRROR_REQUEST_TIMEOUT_MS',
    },
    headersTimeoutMs: {
      doc: 'Time a client has to send the request headers; at most server.requestTimeoutMs.',
      format: 'positive-int',
      default: 10000,
      env: 'MIRROR_HEADERS_TIMEOUT_MS',
    },
    shutdownGraceMs: {
      doc: 'On SIGTERM, time given to requests in flight before the process exits.',
      format: 'non-negative-int',
      default: 10000,
      env: 'MIRROR_SHUTDOWN_GRACE_MS',
    },
    tls: {
      cert: {
        doc: 'PEM certificate file; set together with server.tls.key to serve HTTPS. Empty = plain HTTP.',
        format: 'text',
        default: '',
        env: 'MIRROR_TLS_CERT',
      },
      key: {
        doc: 'PEM private key file for server.tls.cert.',
        format: 'text',
        default: '',
        env: 'MIRROR_TLS_KEY',
      },
    },
  },
  log: {
    level: {
      doc: 'Log level (pino).',
      format: 'log-level',
      default: 'info',
      env: 'MIRROR_LOG_LEVEL',
    },
  },
  upstream: {
    url: {
      doc: 'GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).',
      format: 'http-url',
      default: 'https://api.github.com',
      env: 'MIRROR_UPSTREAM_URL',
    },
    timeoutMs: {
      doc: 'Time allowed for an upstream answer (headers) before the request counts as timed out.',
      format: 'positive-int',
      default: 10000,
      env: 'MIRROR_UPSTREAM_TIMEOUT_MS',
    },
    connectTimeoutMs: {
      doc: 'Time allowed to open a connection to the upstream.',
      format: 'positive-int',
      default: 5000,
      env: 'MIRROR_UPSTREAM_CONNECT_TIMEOUT_MS',
    },
    connections: {
      doc: 'Size of the keep-alive connection pool to the upstream.',
      format: 'positive-int',
      default: 128,
      env: 'MIRROR_UPSTREAM_CONNECTIONS',
    },
    maxBodyBytes: {
      doc: 'Largest upstream response body the mirror reads into memory.',
      format: 'positive-int',
      default: 104857600,
      env: 'MIRROR_UPSTREAM_MAX_BODY_BYTES',
    },
    breaker: {
      enabled: {
        doc: 'Circuit breaker on the upstream: when open, cached answers are served at once (OFFLINE_HIT).',
        format: 'flag',
        default: true,
        env: 'MIRROR_UPSTREAM_BREAKER_ENABLED',
      },
      errorThresholdPercentage: {
        doc: 'Percentage of failed upstream calls (timeouts, connection errors, 5xx) that opens the breaker.',
        format: 'percentage',
        default: 50,
        env: 'MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE',
      },
      volumeThreshold: {
        doc: 'Minimum number of upstream calls in the window before the breaker may open.',
        format: 'positive-int',
        default: 10,
        env: 'MIRROR_UPSTREAM_BREAKER_VOLUME_THRESHOLD',
      },
      resetTimeoutMs: {
        doc: 'Time the upstream breaker stays open before the mirror probes GitHub (an anonymous GET /rate_limit; any answer below 500 closes it).',
        format: 'positive-int',
        default: 10000,
        env: 'MIRROR_UPSTREAM_BREAKER_RESET_TIMEOUT_MS',
      },
    },
    governor: governorSchema,
  },
  cache: {
    backend: {
      doc: 'Cache backend: memory (per process) or redis (shared by all replicas, with a memory fallback).',
      format: 'cache-backend',
      default: 'memory',
      env: 'MIRROR_CACHE_BACKEND',
    },
    memory: {
      maxBytes: {
        doc: 'Size bound of the in-memory cache (LRU by bytes); also bounds the fallback cache used while Redis is down.',
        format: 'positive-int',
        default: 268435456,
        env: 'MIRROR_CACHE_MEMORY_MAX_BYTES',
      },
    },
    ttlSeconds: {
      doc: 'Time an entry is kept after it was last stored or revalidated.',
      format: 'positive-int',
      default: 604800,
      env: 'MIRROR_CACHE_TTL_SECONDS',
    },
    maxEntryBytes: {
      doc: 'Largest response body that is cached; larger answers are served but not stored.',
      format: 'positive-int',
      default: 10485760,
      env: 'MIRROR_CACHE_MAX_ENTRY_BYTES',
    },
    freshnessMs: {
      doc:
        'Freshness window: an entry validated less than this long ago (and within its max-age) is served ' +
        'without an upstream call (FRESH_HIT). 0 = always revalidate, like the Python mirror.',
      format: 'non-negative-int',
      default: 0,
      env: 'MIRROR_CACHE_FRESHNESS_MS',
    },
    coalesce: {
      waitMs: {
        doc:
          'Cross-replica coalescing (Redis backend): on a cold miss one replica takes a short lease on the key ' +
          'and calls GitHub; the others wait up to this long for its entry instead of spending quota on the ' +
          'same resource, then call GitHub themselves. 0 = off.',
        format: 'non-negative-int',
        default: 2000,
        env: 'MIRROR_CACHE_COALESCE_WAIT_MS',
      },
    },
    secret: {
      doc:
        'Secret that keys the credential hash in cache keys and the encryption of entries. All replicas must ' +
        'share it; required in production with the redis backend.',
      format: 'text',
      default: '',
      env: 'MIRROR_CACHE_SECRET',
      sensitive: true,
    },
    redis: {
      url: {
        doc: 'Redis (standalone) URL; rediss:// for TLS. May hold a password.',
        format: 'redis-url',
        default: 'redis://127.0.0.1:6379',
        env: 'MIRROR_REDIS_URL',
        sensitive: true,
      },
      readerUrl: {
        doc: 'Read-replica URL (e.g. an ElastiCache reader endpoint) used for lookups. Empty = read from cache.redis.url.',
        format: 'optional-redis-url',
        default: '',
        env: 'MIRROR_REDIS_READER_URL',
        sensitive: true,
      },
      username: {
        doc: 'Redis ACL user name (overrides the one in the URL).',
        format: 'text',
        default: '',
        env: 'MIRROR_REDIS_USERNAME',
      },
      password: {
        doc: 'Redis password / AUTH token (overrides the one in the URL).',
        format: 'text',
        default: '',
        env: 'MIRROR_REDIS_PASSWORD',
        sensitive: true,
      },
      tls: {
        doc: 'Use TLS to Redis even when the URL says redis:// (Sentinel and Cluster nodes too).',
        format: 'flag',
        default: false,
        env: 'MIRROR_REDIS_TLS',
      },
      sentinels: {
        doc: 'Redis Sentinel nodes; when set, the master is found through Sentinel (cache.redis.sentinelName).',
        format: 'host-port-list',
        default: [],
        env: 'MIRROR_REDIS_SENTINELS',
      },
      sentinelName: {
        doc: 'Name of the master group monitored by Sentinel.',
        format: 'text',
        default: 'mymaster',
        env: 'MIRROR_REDIS_SENTINEL_NAME',
      },
      sentinelPassword: {
        doc: 'Password of the Sentinel nodes themselves.',
        format: 'text',
        default: '',
        env: 'MIRROR_REDIS_SENTINEL_PASSWORD',
        sensitive: true,
      },
      clusterNodes: {
        doc: 'Redis Cluster seed nodes; when set, the mirror talks to a Cluster.',
        format: 'host-port-list',
        default: [],
        env: 'MIRROR_REDIS_CLUSTER_NODES',
      },
      scaleReads: {
        doc: 'Cluster only: where lookups go (master, slave = replicas, all).',
        format: 'redis-scale-reads',
        default: 'master',
        env: 'MIRROR_REDIS_SCALE_READS',
      },
      keyPrefix: {
        doc: 'Prefix of every key the mirror writes in Redis.',
        format: 'text',
        default: 'ghm:',
        env: 'MIRROR_REDIS_KEY_PREFIX',
      },
      commandTimeoutMs: {
        doc: 'Time a Redis command may take before it fails (and counts against the cache breaker).',
        format: 'positive-int',
        default: 200,
        env: 'MIRROR_REDIS_COMMAND_TIMEOUT_MS',
      },
    },
    breaker: {
      timeoutMs: {
        doc: 'Time a cache operation may take before the breaker counts it as failed.',
        format: 'positive-int',
        default: 250,
        env: 'MIRROR_CACHE_BREAKER_TIMEOUT_MS',
      },
      errorThresholdPercentage: {
        doc: 'Percentage of failed cache operations that switches to the in-memory fallback.',
        format: 'percentage',
        default: 50,
        env: 'MIRROR_CACHE_BREAKER_ERROR_THRESHOLD_PERCENTAGE',
      },
      volumeThreshold: {
        doc: 'Minimum number of cache operations in the window before the breaker may open.',
        format: 'positive-int',
        default: 5,
        env: 'MIRROR_CACHE_BREAKER_VOLUME_THRESHOLD',
      },
      resetTimeoutMs: {
        doc: 'Time the cache breaker stays open before Redis is probed again.',
        format: 'positive-int',
        default: 5000,
        env: 'MIRROR_CACHE_BREAKER_RESET_TIMEOUT_MS',
      },
    },
  },
  auth: {
    allowedUsers: {
      doc:
        'GitHub logins allowed to use the mirror (checked with GET /user on their token). Empty = anyone; ' +
        'when set, requests without a token are refused.',
      format: 'login-list',
      default: [],
      env: 'MIRROR_ALLOWED_USERS',
    },
    validationTtlSeconds: {
      doc: 'Time a verdict of the user check (allowed, or refused by GitHub or the list) is kept before the token is checked again.',
      format: 'positive-int',
      default: 300,
      env: 'MIRROR_AUTH_VALIDATION_TTL_SECONDS',
    },
  },
  rewrite: {
    bodyUrls: {
      doc: 'Also rewrite upstream URLs inside JSON bodies to the public URL (Link headers are always rewritten).',
      format: 'flag',
      default: true,
      env: 'MIRROR_REWRITE_BODY_URLS',
    },
  },
  snapshot: {
    store: {
      doc: 'Where cache snapshots are written and restored from: none, file (snapshot.dir) or s3.',
      format: 'snapshot-store',
      default: 'file',
      env: 'MIRROR_SNAPSHOT_STORE',
    },
    dir: {
      doc: 'Directory of the file snapshot store (relative paths are from the working directory).',
      format: 'text',
      default: './var/snapshots',
      env: 'MIRROR_SNAPSHOT_DIR',
    },
    intervalSeconds: {
      doc: 'Time between two snapshots.',
      format: 'positive-int',
      default: 300,
      env: 'MIRROR_SNAPSHOT_INTERVAL_SECONDS',
    },
    retain: {
      doc: 'Number of snapshots kept; older ones are deleted.',
      format: 'positive-int',
      default: 5,
      env: 'MIRROR_SNAPSHOT_RETAIN',
    },
    s3: {
      bucket: {
        doc: 'S3 bucket (required when snapshot.store is s3). Credentials come from the AWS default chain.',
        format: 'text',
        default: '',
        env: 'MIRROR_SNAPSHOT_S3_BUCKET',
      },
      prefix: {
        doc: 'Key prefix of the snapshot objects in the bucket.',
        format: 'text',
        default: 'github-mirror/',
        env: 'MIRROR_SNAPSHOT_S3_PREFIX',
      },
      region: {
        doc: 'AWS region of the bucket.',
        format: 'nonempty-text',
        default: 'us-east-1',
        env: 'MIRROR_SNAPSHOT_S3_REGION',
      },
      endpoint: {
        doc: 'Custom S3 endpoint (MinIO, LocalStack, ...). Empty = AWS.',
        format: 'optional-http-url',
        default: '',
        env: 'MIRROR_SNAPSHOT_S3_ENDPOINT',
      },
      forcePathStyle: {
        doc: 'Use path-style bucket addressing (needed by most S3-compatible stores).',
        format: 'flag',
        default: false,
        env: 'MIRROR_SNAPSHOT_S3_FORCE_PATH_STYLE',
      },
    },
  },
} satisfies ConfigSchemaTree;

function isKeySpec(node: ConfigKeySpec | ConfigSchemaTree): node is ConfigKeySpec {
  return Object.hasOwn(node, 'default');
}

interface LeafInfo {
  key: string;
  spec: ConfigKeySpec;
}

function flattenSchema(tree: ConfigSchemaTree, prefix = ''): LeafInfo[] {
  return Object.entries(tree).flatMap(([name, node]) => {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    return isKeySpec(node) ? [{ key, spec: node }] : flattenSchema(node, key);
  });
}

const LEAVES: readonly LeafInfo[] = flattenSchema(configSchema);
const LEAF_BY_KEY = new Map(LEAVES.map((leaf) => [leaf.key, leaf.spec]));
const KEY_BY_ENV = new Map(LEAVES.map((leaf) => [leaf.spec.env, leaf.key]));

// ---------------------------------------------------------------------------------------------
// ghmirror (Python) aliases
// ---------------------------------------------------------------------------------------------

export interface EnvAlias {
  /** The Python mirror's variable(s). */
  aliases: readonly string[];
  /** The MIRROR_ variable it stands for (used only when that one is unset). */
  target: string;
  key: string;
  rule: string;
}

export const envAliases: readonly EnvAlias[] = [
  {
    aliases: ['GITHUB_MIRROR_URL'],
    target: 'MIRROR_PUBLIC_URL',
    key: 'server.publicUrl',
    rule: 'Copied as is.',
  },
  {
    aliases: ['CACHE_TYPE'],
    target: 'MIRROR_CACHE_BACKEND',
    key: 'cache.backend',
    rule:
      '`in-memory` → `memory`, `redis` → `redis` (any case). Any other value is rejected (the Python mirror ' +
      'silently fell back to in-memory).',
  },
  {
    aliases: ['GITHUB_USERS'],
    target: 'MIRROR_ALLOWED_USERS',
    key: 'auth.allowedUsers',
    rule: 'Colon-separated: `alice:bob` → `["alice", "bob"]`.',
  },
  {
    aliases: ['PRIMARY_ENDPOINT', 'REDIS_PORT', 'REDIS_TOKEN', 'REDIS_SSL'],
    target: 'MIRROR_REDIS_URL',
    key: 'cache.redis.url',
    rule:
      'Built as `redis[s]://[:TOKEN@]HOST:PORT` when PRIMARY_ENDPOINT is set or CACHE_TYPE is `redis` ' +
      '(HOST defaults to 127.0.0.1). PORT = REDIS_PORT (default 6379); TOKEN = REDIS_TOKEN (or REDIS_PASSWORD, ' +
      'the name in the Python README), URL-encoded; `rediss://` when REDIS_SSL is true/True/1/yes/on. ' +
      'A PRIMARY_ENDPOINT that already is a redis:// or rediss:// URL is used as is.',
  },
  {
    aliases: ['READER_ENDPOINT'],
    target: 'MIRROR_REDIS_READER_URL',
    key: 'cache.redis.readerUrl',
    rule: 'Built like cache.redis.url from READER_ENDPOINT with the same REDIS_PORT, REDIS_TOKEN and REDIS_SSL.',
  },
];

type Env = Record<string, string>;

const SERVICE_LINK = /^tcp:\/\/\S+:\d+$/;
const SERVICE_LINK_HINT =
  'this looks like a Kubernetes service-link variable; rename the Service or set enableServiceLinks: false';

function buildRedisUrl(endpoint: string, env: Env, problems: string[]): string | undefined {
  if (/^rediss?:\/\//i.test(endpoint)) return endpoint;
  let host = endpoint;
  let port = 6379;
  const rawPort = env.REDIS_PORT;
  if (rawPort !== undefined) {
    const parsed = parseInteger(rawPort);
    if (typeof parsed !== 'number' || parsed < 1 || parsed > 65535) {
      const hint = SERVICE_LINK.test(rawPort.trim()) ? `; ${SERVICE_LINK_HINT}` : '';
      problems.push(`REDIS_PORT: must be a port number from 1 to 65535 (got ${describeValue(rawPort)}${hint})`);
      return undefined;
    }
    port = parsed;
  }
  const hostPort = /^([^:[\]]+):(\d{1,5})$/.exec(host);
  if (hostPort?.[1] && hostPort[2]) {
    host = hostPort[1];
    port = Number(hostPort[2]);
  } else if (host.includes(':') && !host.startsWith('[')) {
    host = `[${host}]`;
  }
  let tls = false;
  const rawSsl = env.REDIS_SSL;
  if (rawSsl !== undefined) {
    const parsed = parseBoolean(rawSsl);
    if (typeof parsed !== 'boolean') {
      problems.push(`REDIS_SSL: must be true or false (got ${describeValue(rawSsl)})`);
      return undefined;
    }
    tls = parsed;
  }
  const token = env.REDIS_TOKEN ?? env.REDIS_PASSWORD;
  const auth = token === undefined ? '' : `:${encodeURIComponent(token)}@`;
  return `${tls ? 'rediss' : 'redis'}://${auth}${host}:${port}`;
}

/**
 * Returns the environment convict reads: the given one plus MIRROR_* variables derived from the
 * Python mirror's variables when the MIRROR_* one is unset. `origins` says which alias produced what.
 */
function applyAliases(env: Env, problems: string[]): { env: Env; origins: Map<string, string> } {
  const out: Env = { ...env };
  const origins = new Map<string, string>();
  const derive = (target: string, origin: string, value: string | undefined): void => {
    if (out[target] !== undefined || value === undefined) return;
    out[target] = value;
    origins.set(target, origin);
  };

  derive('MIRROR_PUBLIC_URL', 'GITHUB_MIRROR_URL', env.GITHUB_MIRROR_URL);

  const cacheType = env.CACHE_TYPE?.trim().toLowerCase();
  derive('MIRROR_CACHE_BACKEND', 'CACHE_TYPE', cacheType === 'in-memory' ? 'memory' : cacheType);

  derive(
    'MIRROR_ALLOWED_USERS',
    'GITHUB_USERS',
    env.GITHUB_USERS?.split(':')
      .map((login) => login.trim())
      .filter((login) => login !== '')
      .join(','),
  );

  const redisOrigin = (endpointVar: string): string =>
    [endpointVar, 'REDIS_PORT', 'REDIS_TOKEN', 'REDIS_PASSWORD', 'REDIS_SSL']
      .filter((name) => env[name] !== undefined)
      .filter((name) => name !== 'REDIS_PASSWORD' || env.REDIS_TOKEN === undefined)
      .join('+');
  let redisVarsChecked = false;
  if (out.MIRROR_REDIS_URL === undefined && (env.PRIMARY_ENDPOINT !== undefined || cacheType === 'redis')) {
    const endpoint = env.PRIMARY_ENDPOINT?.trim() ?? '127.0.0.1';
    const origin = env.PRIMARY_ENDPOINT !== undefined ? redisOrigin('PRIMARY_ENDPOINT') : redisOrigin('CACHE_TYPE');
    derive('MIRROR_REDIS_URL', origin, buildRedisUrl(endpoint, env, problems));
    redisVarsChecked = true;
  }
  if (out.MIRROR_REDIS_READER_URL === undefined && env.READER_ENDPOINT !== undefined) {
    // A bad REDIS_PORT / REDIS_SSL is reported once, not once per URL.
    const sink = redisVarsChecked ? [] : problems;
    derive('MIRROR_REDIS_READER_URL', redisOrigin('READER_ENDPOINT'), buildRedisUrl(env.READER_ENDPOINT.trim(), env, sink));
  }
  return { env: out, origins };
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i += 1) {
    const row = d[i] ?? [];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
}

function suggestion(name: string, prefix: string, siblings: string[]): string {
  const lower = name.toLowerCase();
  const limit = name.length >= 6 ? 2 : 1;
  const best = siblings
    .map((candidate) => ({ candidate, distance: editDistance(lower, candidate.toLowerCase()) }))
    .sort((x, y) => x.distance - y.distance)[0];
  if (!best || best.distance > limit) return '';
  return ` (did you mean '${prefix === '' ? '' : `${prefix}.`}${best.candidate}'?)`;
}

/**
 * Keeps what the schema declares; every unknown key or misplaced section becomes a problem naming
 * the key and the file (convict's own strict check cannot say which file a key came from).
 */
function sanitizeFile(data: Json, tree: ConfigSchemaTree, prefix: string, file: string, problems: string[]): Json {
  const out: Json = {};
  for (const [name, value] of Object.entries(data)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    const node = Object.hasOwn(tree, name) ? tree[name] : undefined;
    if (node === undefined) {
      problems.push(`unknown key '${key}' in ${file}${suggestion(name, prefix, Object.keys(tree))}`);
    } else if (isKeySpec(node)) {
      if (isPlainObject(value)) problems.push(`${key}: must be a single value, not an object (in ${file})`);
      else out[name] = value;
    } else if (isPlainObject(value)) {
      out[name] = sanitizeFile(value, node, key, file, problems);
    } else {
      problems.push(`${key}: must be an object with keys ${Object.keys(node).join(', ')} (got ${kindOf(value)} in ${file})`);
    }
  }
  return out;
}

function jsonErrorMessage(error: unknown, text: string): string {
  let message = error instanceof Error ? error.message : String(error);
  // V8 quotes a piece of the text ('..."secret": hunter2}" is not valid JSON'); config files may
  // hold secrets, so the quote goes.
  if (message.endsWith('is not valid JSON')) message = `${message.replace(/,\s*(?:\.\.\.)?".*$/s, '')} (not valid JSON)`;
  const position = /at position (\d+)/.exec(message);
  if (position?.[1] !== undefined) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    message = message.replace(/at position \d+/, `at line ${line}, column ${column}`);
  }
  return message;
}

interface LoadedFile {
  path: string;
  data: Json;
}

function readConfigFile(path: string, origin: string | undefined, problems: string[]): LoadedFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && origin === undefined) return undefined; // optional file
    problems.push(
      code === 'ENOENT'
        ? `config file not found: ${path} (given by ${origin})`
        : `cannot read config file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return undefined;
  }
  text = text.replace(/^\uFEFF/, '');
  if (text.trim() === '') return { path, data: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    problems.push(`cannot parse config file ${path}: ${jsonErrorMessage(error, text)}`);
    return undefined;
  }
  if (!isPlainObject(parsed)) {
    problems.push(`config file ${path} must hold a JSON object (got ${kindOf(parsed)})`);
    return undefined;
  }
  return { path, data: sanitizeFile(parsed, configSchema, '', path, problems) };
}

function configFileFromArgs(args: readonly string[], problems: string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === '--') break;
    if (arg === '--config') {
      const next = args[i + 1];
      if (next === undefined || next === '' || next.startsWith('--')) {
        problems.push('--config: needs a file path (--config FILE or --config=FILE)');
      } else {
        file = next;
        i += 1;
      }
    } else if (arg?.startsWith('--config=')) {
      const value = arg.slice('--config='.length);
      if (value === '') problems.push('--config: needs a file path (--config FILE or --config=FILE)');
      else file = value;
    }
  }
  return file;
}

/**
 * <project root>/config, found from this file's location so it works from src/ (tsx) and from the
 * compiled output (dist/...): the nearest ancestor holding package.json and a config/ directory.
 */
export function projectConfigDir(): string {
  let firstPackageDir: string | undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      if (existsSync(join(dir, 'config'))) return join(dir, 'config');
      firstPackageDir ??= dir;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(firstPackageDir ?? process.cwd(), 'config');
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

export interface LoadConfigOptions {
  /** Default process.env (never mutated). */
  env?: Record<string, string | undefined>;
  /** Default process.argv.slice(2); `--config FILE` and `--config=FILE` are read, the rest ignored. */
  args?: string[];
  /** Default <project root>/config. */
  configDir?: string;
}

export interface ResolvedConfig {
  config: MirrorConfig;
  /** NODE_ENV used to pick config/<NODE_ENV>.json. */
  nodeEnv: string;
  /** Config files that were found and merged, lowest priority first. */
  files: string[];
}

function getPath(root: unknown, key: string): unknown {
  let node: unknown = root;
  for (const part of key.split('.')) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

function setPath(root: Json, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop();
  let node: Json = root;
  for (const part of parts) {
    const child = node[part];
    if (!isPlainObject(child)) return;
    node = child;
  }
  if (last !== undefined && Object.hasOwn(node, last)) node[last] = value;
}

function hasPath(root: Json, key: string): boolean {
  const parts = key.split('.');
  const last = parts.pop() ?? '';
  const parent = parts.length === 0 ? root : getPath(root, parts.join('.'));
  return isPlainObject(parent) && Object.hasOwn(parent, last);
}

/** Loads, validates and returns the configuration with where it came from. Throws ConfigError. */
export function resolveConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const problems: string[] = [];

  // Empty or blank variables count as unset (`MIRROR_PORT=` in an env file, or an empty k8s value).
  const env: Env = {};
  for (const [name, value] of Object.entries(options.env ?? process.env)) {
    if (value !== undefined && value.trim() !== '') env[name] = value;
  }
  const args = options.args ?? process.argv.slice(2);
  const configDir = resolve(options.configDir ?? projectConfigDir());

  const nodeEnv = env.NODE_ENV?.trim() ?? 'development';
  const { env: effectiveEnv, origins } = applyAliases(env, problems);

  const loaded: LoadedFile[] = [];
  const add = (file: LoadedFile | undefined): void => {
    if (file) loaded.push(file);
  };
  add(readConfigFile(join(configDir, 'default.json'), undefined, problems));
  if (/^[A-Za-z0-9_-]+$/.test(nodeEnv)) {
    add(readConfigFile(join(configDir, `${nodeEnv}.json`), undefined, problems));
  } else {
    problems.push(`NODE_ENV: must be a simple name such as production (got ${describeValue(nodeEnv)})`);
  }
  const fromArgs = configFileFromArgs(args, problems);
  const explicit = fromArgs ?? env.MIRROR_CONFIG?.trim();
  if (explicit !== undefined) {
    add(readConfigFile(resolve(explicit), fromArgs !== undefined ? '--config' : 'MIRROR_CONFIG', problems));
  }

  const instance = convict<Json>(configSchema, { env: effectiveEnv, args: [] });
  for (const file of loaded) instance.load(file.data);
  const values = instance.getProperties();

  const sourceOf = (key: string): string | undefined => {
    const envName = LEAF_BY_KEY.get(key)?.env;
    if (envName !== undefined && effectiveEnv[envName] !== undefined) return origins.get(envName) ?? envName;
    return loaded.findLast((file) => hasPath(file.data, key))?.path;
  };

  const badKeys = new Set<string>();
  try {
    instance.validate({ allowed: 'strict' });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    for (const line of message.split('\n').filter((l) => l.trim() !== '')) {
      problems.push(describeConvictProblem(line, values, sourceOf, effectiveEnv, badKeys));
    }
  }

  if (!badKeys.has('cache.redis.sentinels')) normalizeHostPorts(values, 'cache.redis.sentinels');
  if (!badKeys.has('cache.redis.clusterNodes')) normalizeHostPorts(values, 'cache.redis.clusterNodes');
  crossFieldProblems(values as unknown as MirrorConfig, nodeEnv, badKeys, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return { config: values as unknown as MirrorConfig, nodeEnv, files: loaded.map((file) => file.path) };
}

/** Loads and validates the configuration. Throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): MirrorConfig {
  return resolveConfig(options).config;
}

/**
 * Turns one line of convict's validation message ("key: message: value was ...") into ours:
 * "key: message (got VALUE, from SOURCE)" — the value is left out for sensitive keys.
 */
function describeConvictProblem(
  line: string,
  values: Json,
  sourceOf: (key: string) => string | undefined,
  env: Env,
  badKeys: Set<string>,
): string {
  const separator = line.indexOf(': ');
  const key = separator > 0 ? line.slice(0, separator) : '';
  const spec = LEAF_BY_KEY.get(key);
  if (!spec) return line;
  badKeys.add(key);
  let message = line.slice(separator + 2);
  const valueSuffix = message.indexOf(': value was ');
  if (valueSuffix >= 0) message = message.slice(0, valueSuffix);
  const details: string[] = [];
  if (spec.sensitive !== true) details.push(`got ${describeValue(getPath(values, key))}`);
  const source = sourceOf(key);
  if (source !== undefined) details.push(`from ${source}`);
  const raw = source !== undefined ? env[source] : undefined;
  const hint = raw !== undefined && SERVICE_LINK.test(raw.trim()) ? `; ${SERVICE_LINK_HINT}` : '';
  return `${key}: ${message}${details.length > 0 ? ` (${details.join(', ')}${hint})` : ''}`;
}

function normalizeHostPorts(values: Json, key: string): void {
  const list = getPath(values, key);
  if (!Array.isArray(list)) return;
  setPath(
    values,
    key,
    list.map((entry: unknown) => (typeof entry === 'string' ? (parseHostPort(entry) ?? entry) : entry)),
  );
}

function crossFieldProblems(config: MirrorConfig, nodeEnv: string, badKeys: Set<string>, problems: string[]): void {
  const ok = (...keys: string[]): boolean => keys.every((key) => !badKeys.has(key));
  const { server, cache, snapshot } = config;

  if (ok('cache.redis.sentinels', 'cache.redis.clusterNodes')) {
    if (cache.redis.sentinels.length > 0 && cache.redis.clusterNodes.length > 0) {
      problems.push(
        'cache.redis.sentinels: cannot be combined with cache.redis.clusterNodes (Sentinel and Cluster are different deployments; set one)',
      );
    }
  }
  if (ok('cache.redis.sentinels', 'cache.redis.sentinelName')) {
    if (cache.redis.sentinels.length > 0 && cache.redis.sentinelName.trim() === '') {
      problems.push('cache.redis.sentinelName: required when cache.redis.sentinels is set');
    }
  }

  if (ok('server.tls.cert', 'server.tls.key')) {
    const { cert, key } = server.tls;
    if (cert !== '' && key === '') problems.push('server.tls.key: required when server.tls.cert is set (both or neither)');
    if (key !== '' && cert === '') problems.push('server.tls.cert: required when server.tls.key is set (both or neither)');
    for (const [name, path] of [
      ['server.tls.cert', cert],
      ['server.tls.key', key],
    ] as const) {
      if (path !== '' && !isReadableFile(path)) problems.push(`${name}: file not found or not a file: ${resolve(path)}`);
    }
  }

  if (ok('server.headersTimeoutMs', 'server.requestTimeoutMs') && server.headersTimeoutMs > server.requestTimeoutMs) {
    problems.push(
      `server.headersTimeoutMs: must not exceed server.requestTimeoutMs (${server.headersTimeoutMs} > ${server.requestTimeoutMs})`,
    );
  }

  if (ok('cache.maxEntryBytes', 'cache.memory.maxBytes') && cache.maxEntryBytes > cache.memory.maxBytes) {
    problems.push(
      `cache.maxEntryBytes: must not exceed cache.memory.maxBytes (${cache.maxEntryBytes} > ${cache.memory.maxBytes})`,
    );
  }

  if (ok('cache.backend', 'cache.secret') && nodeEnv === 'production' && cache.backend === 'redis' && cache.secret === '') {
    problems.push('cache.secret: required in production with the redis backend (all replicas must share it)');
  }

  if (ok('snapshot.store', 'snapshot.s3.bucket') && snapshot.store === 's3' && snapshot.s3.bucket.trim() === '') {
    problems.push('snapshot.s3.bucket: required when snapshot.store is s3');
  }
  if (ok('snapshot.store', 'snapshot.dir') && snapshot.store === 'file' && snapshot.dir.trim() === '') {
    problems.push('snapshot.dir: required when snapshot.store is file');
  }
}

function isReadableFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Redaction and introspection
// ---------------------------------------------------------------------------------------------

export const REDACTED = '[redacted]';

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    const auth = url.username !== '' || url.password !== '' ? `${REDACTED}@` : '';
    const path = url.pathname === '/' ? '' : url.pathname;
    return `${url.protocol}//${auth}${url.host}${path}${url.search !== '' ? `?${REDACTED}` : ''}`;
  } catch {
    return REDACTED;
  }
}

/**
 * The same shape with every sensitive value replaced: secrets become "[redacted]" (an unset one
 * stays ""), Redis URLs keep scheme, host, port and database but lose credentials and query.
 * Meant for the start log line.
 */
export function redactedConfig(config: MirrorConfig): unknown {
  const copy = structuredClone(config) as unknown as Json;
  for (const { key, spec } of LEAVES) {
    if (spec.sensitive !== true) continue;
    const value = getPath(copy, key);
    if (typeof value !== 'string' || value === '') continue;
    setPath(copy, key, spec.format === 'redis-url' || spec.format === 'optional-redis-url' ? redactUrl(value) : REDACTED);
  }
  return copy;
}

export interface ConfigKeyInfo {
  key: string;
  env: string;
  /** Python mirror variables that can set this key. */
  aliases: readonly string[];
  default: unknown;
  format: ConfigFormat;
  formatDoc: string;
  doc: string;
  sensitive: boolean;
}

/** Every key of the schema, in schema order (used by scripts/gen-config-docs.ts). */
export function describeConfigKeys(): ConfigKeyInfo[] {
  return LEAVES.map(({ key, spec }) => ({
    key,
    env: spec.env,
    aliases: envAliases.filter((alias) => alias.key === key).flatMap((alias) => alias.aliases),
    default: spec.default,
    format: spec.format,
    formatDoc: FORMATS[spec.format].doc,
    doc: spec.doc,
    sensitive: spec.sensitive === true,
  }));
}

/** The schema key an environment variable sets, if any. */
export function configKeyForEnv(name: string): string | undefined {
  return KEY_BY_ENV.get(name);
}
