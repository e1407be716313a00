/**
 * The schema table: every configuration key with its doc, format, default and MIRROR_* variable,
 * in the order docs/configuration.md lists them. One coherent table, so it stays one file (longer
 * than the usual ~350 lines). Below it, the flattened views the loader, redaction and docs read.
 */
import type { ConfigFormat } from './formats.js';

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

/** upstream.governor (issue 15): GitHub's secondary rate limits per credential, shared by the fleet. */
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
  leaseMs: {
    doc:
      'Redis backend: a busy credential\'s reads are admitted in blocks leased from Redis for this long (a few slots and tens of points, ' +
      'granted only while the credential is below half of each limit fleet-wide; holds reach every replica at once through pub/sub), ' +
      'instead of one Redis round trip per upstream call. 0 = no leases. Off in a Redis Cluster.',
    format: 'non-negative-int',
    default: 1000,
    env: 'MIRROR_UPSTREAM_GOVERNOR_LEASE_MS',
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
    bodyTimeoutMs: {
      doc:
        'Time a client has to send a request body once its headers arrived; the body is read whole before it goes upstream ' +
        '(a slow client never holds an upstream connection). Later: 408 REQUEST_TIMEOUT.',
      format: 'positive-int',
      default: 10000,
      env: 'MIRROR_BODY_TIMEOUT_MS',
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
    requests: {
      doc: 'One access-log line per answer (at info; failed answers, 5xx, at warn). Off = only the lines of failed answers are written; metrics and events are unchanged.',
      format: 'flag',
      default: true,
      env: 'MIRROR_LOG_REQUESTS',
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
      doc: 'Size of the keep-alive connection pool for reads (cached GETs and HEADs) to the upstream.',
      format: 'positive-int',
      default: 128,
      env: 'MIRROR_UPSTREAM_CONNECTIONS',
    },
    writeConnections: {
      doc: 'Size of the separate keep-alive connection pool for every other method (passed through): writes never hold a connection a read needs.',
      format: 'positive-int',
      default: 32,
      env: 'MIRROR_UPSTREAM_WRITE_CONNECTIONS',
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
    shareAcrossCredentials: {
      doc:
        'Store each body once per resource and share it across credentials: a credential with no entry of its own ' +
        'is revalidated against the bodies stored for others, with the ETags GitHub would give it (a 304 is free and ' +
        'proves access and an identical body), so rotating tokens keep the cache warm. Shared bodies are sealed under ' +
        'a key derived from cache.secret. false = every credential keeps its own copy, sealed with its own key.',
      format: 'flag',
      default: true,
      env: 'MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS',
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
      nearCacheBytes: {
        doc:
          'Size bound of the near cache: an in-process copy of what Redis lookups returned, kept correct by Redis ' +
          'client-side caching invalidations (CLIENT TRACKING), so a lookup of an unchanged key needs no round trip. ' +
          '0 = off. Always off with a Cluster or a reader URL.',
        format: 'non-negative-int',
        default: 33554432,
        env: 'MIRROR_REDIS_NEAR_CACHE_BYTES',
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

export function isKeySpec(node: ConfigKeySpec | ConfigSchemaTree): node is ConfigKeySpec {
  return Object.hasOwn(node, 'default');
}

export interface LeafInfo {
  key: string;
  spec: ConfigKeySpec;
}

function flattenSchema(tree: ConfigSchemaTree, prefix = ''): LeafInfo[] {
  return Object.entries(tree).flatMap(([name, node]) => {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    return isKeySpec(node) ? [{ key, spec: node }] : flattenSchema(node, key);
  });
}

export const LEAVES: readonly LeafInfo[] = flattenSchema(configSchema);
export const LEAF_BY_KEY = new Map(LEAVES.map((leaf) => [leaf.key, leaf.spec]));
export const KEY_BY_ENV = new Map(LEAVES.map((leaf) => [leaf.spec.env, leaf.key]));
