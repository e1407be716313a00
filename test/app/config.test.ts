import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  configSchema,
  describeConfigKeys,
  loadConfig,
  redactedConfig,
  resolveConfig,
  type LoadConfigOptions,
  type MirrorConfig,
} from '../../src/app/config/index.js';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../scripts/gen-config-docs.js';

const scratch = mkdtempSync(join(tmpdir(), 'mirror-config-test-'));
/** A config dir with no files: only schema defaults apply. */
const emptyDir = join(scratch, 'empty');
mkdirSync(emptyDir);

test.after.always(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let fileCounter = 0;
function writeJson(content: unknown, name = `file-${++fileCounter}.json`): string {
  const path = join(scratch, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Only schema defaults + what the test passes, unless it chooses a config dir. */
function load(env: Record<string, string | undefined> = {}, extra: Partial<LoadConfigOptions> = {}): MirrorConfig {
  return loadConfig({ env, args: [], configDir: emptyDir, ...extra });
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

test('schema defaults load into a plain typed object', (t) => {
  const config = load();
  t.is(config.server.port, 8080);
  t.is(config.server.host, '0.0.0.0');
  t.is(config.server.publicUrl, '');
  t.false(config.server.trustProxy);
  t.is(config.log.level, 'info');
  t.is(config.upstream.url, 'https://api.github.com');
  t.is(config.upstream.timeoutMs, 10000);
  t.true(config.upstream.breaker.enabled);
  t.is(config.cache.backend, 'memory');
  t.is(config.cache.memory.maxBytes, 268435456);
  t.is(config.cache.freshnessMs, 0);
  t.is(config.cache.redis.url, 'redis://127.0.0.1:6379');
  t.deepEqual(config.cache.redis.sentinels, []);
  t.deepEqual(config.cache.redis.clusterNodes, []);
  t.is(config.cache.redis.keyPrefix, 'ghm:');
  t.deepEqual(config.auth.allowedUsers, []);
  t.true(config.rewrite.bodyUrls);
  t.is(config.snapshot.store, 'file');
  t.is(config.snapshot.dir, './var/snapshots');
  t.is(config.snapshot.intervalSeconds, 300);
  t.is(config.snapshot.s3.prefix, 'github-mirror/');
});

test('every schema key has doc, format, default and a unique MIRROR_ env name', (t) => {
  const keys = describeConfigKeys();
  t.true(keys.length > 50);
  const envNames = new Set<string>();
  for (const info of keys) {
    t.true(info.doc.length > 10, info.key);
    t.truthy(info.format, info.key);
    t.not(info.default, undefined, info.key);
    t.regex(info.env, /^MIRROR_[A-Z0-9_]+$/, info.key);
    t.false(envNames.has(info.env), `${info.env} is used twice`);
    envNames.add(info.env);
  }
  t.true(configSchema.cache.secret.sensitive);
  t.true(configSchema.cache.redis.url.sensitive);
  t.true(configSchema.cache.redis.password.sensitive);
});

test('environment variables override defaults and are parsed to their types', (t) => {
  const config = load({
    MIRROR_PORT: '9090',
    MIRROR_HOST: '127.0.0.1',
    MIRROR_TRUST_PROXY: 'yes',
    MIRROR_PUBLIC_URL: 'https://mirror.example.com/',
    MIRROR_UPSTREAM_URL: 'https://ghe.example.com/api/v3//',
    MIRROR_UPSTREAM_BREAKER_ENABLED: 'false',
    MIRROR_CACHE_FRESHNESS_MS: '1500',
    MIRROR_LOG_LEVEL: 'WARN',
    MIRROR_ALLOWED_USERS: 'alice, bob,,',
    MIRROR_REWRITE_BODY_URLS: '0',
    MIRROR_SNAPSHOT_STORE: 's3',
    MIRROR_SNAPSHOT_S3_BUCKET: 'backups',
  });
  t.is(config.server.port, 9090);
  t.is(config.server.host, '127.0.0.1');
  t.true(config.server.trustProxy);
  t.is(config.server.publicUrl, 'https://mirror.example.com');
  t.is(config.upstream.url, 'https://ghe.example.com/api/v3');
  t.false(config.upstream.breaker.enabled);
  t.is(config.cache.freshnessMs, 1500);
  t.is(config.log.level, 'warn');
  t.deepEqual(config.auth.allowedUsers, ['alice', 'bob']);
  t.false(config.rewrite.bodyUrls);
  t.is(config.snapshot.store, 's3');
  t.is(config.snapshot.s3.bucket, 'backups');
});

test('an empty or blank environment variable counts as unset', (t) => {
  const config = load({ MIRROR_PORT: '', MIRROR_LOG_LEVEL: '   ', CACHE_TYPE: '' });
  t.is(config.server.port, 8080);
  t.is(config.log.level, 'info');
  t.is(config.cache.backend, 'memory');
});

test('process.env is never mutated', (t) => {
  const before = { ...process.env };
  load({ CACHE_TYPE: 'redis', PRIMARY_ENDPOINT: 'redis.internal', GITHUB_USERS: 'a:b' });
  t.deepEqual({ ...process.env }, before);
  t.is(process.env.MIRROR_CACHE_BACKEND, before.MIRROR_CACHE_BACKEND);
});

// --- ghmirror aliases -------------------------------------------------------------------------

test('CACHE_TYPE=in-memory means memory, CACHE_TYPE=redis means redis', (t) => {
  t.is(load({ CACHE_TYPE: 'in-memory' }).cache.backend, 'memory');
  t.is(load({ CACHE_TYPE: 'redis' }).cache.backend, 'redis');
  t.is(load({ CACHE_TYPE: 'Redis' }).cache.backend, 'redis');
});

test('a MIRROR_ variable wins over its alias', (t) => {
  const config = load({
    CACHE_TYPE: 'redis',
    MIRROR_CACHE_BACKEND: 'memory',
    GITHUB_USERS: 'carol',
    MIRROR_ALLOWED_USERS: 'dave',
    GITHUB_MIRROR_URL: 'https://old.example.com',
    MIRROR_PUBLIC_URL: 'https://new.example.com',
    PRIMARY_ENDPOINT: 'old-redis',
    MIRROR_REDIS_URL: 'redis://new-redis:6380',
  });
  t.is(config.cache.backend, 'memory');
  t.deepEqual(config.auth.allowedUsers, ['dave']);
  t.is(config.server.publicUrl, 'https://new.example.com');
  t.is(config.cache.redis.url, 'redis://new-redis:6380');
});

test('GITHUB_USERS is a colon-separated list', (t) => {
  t.deepEqual(load({ GITHUB_USERS: 'app-sre-bot:cs-sre-bot: third ' }).auth.allowedUsers, [
    'app-sre-bot',
    'cs-sre-bot',
    'third',
  ]);
});

test('GITHUB_MIRROR_URL sets the public URL (trailing slash removed)', (t) => {
  t.is(load({ GITHUB_MIRROR_URL: 'http://mirror.local:8080/' }).server.publicUrl, 'http://mirror.local:8080');
});

test('PRIMARY_ENDPOINT + REDIS_PORT + REDIS_TOKEN + REDIS_SSL build a rediss:// URL', (t) => {
  const config = load({
    CACHE_TYPE: 'redis',
    PRIMARY_ENDPOINT: 'master.abc.cache.amazonaws.com',
    REDIS_PORT: '6380',
    REDIS_TOKEN: 'tok',
    REDIS_SSL: 'True',
  });
  t.is(config.cache.backend, 'redis');
  t.is(config.cache.redis.url, 'rediss://:tok@master.abc.cache.amazonaws.com:6380');
});

test('the alias Redis URL encodes the token, defaults the port and honours REDIS_SSL=1 / false', (t) => {
  t.is(
    load({ PRIMARY_ENDPOINT: 'redis.internal', REDIS_TOKEN: 'p@ss/w:rd', REDIS_SSL: '1' }).cache.redis.url,
    'rediss://:p%40ss%2Fw%3Ard@redis.internal:6379',
  );
  t.is(load({ PRIMARY_ENDPOINT: 'redis.internal', REDIS_SSL: 'false' }).cache.redis.url, 'redis://redis.internal:6379');
  t.is(load({ CACHE_TYPE: 'redis', REDIS_TOKEN: 'x' }).cache.redis.url, 'redis://:x@127.0.0.1:6379');
});

test('REDIS_PORT alone (e.g. a Kubernetes service link) does not touch the Redis URL', (t) => {
  t.is(load({ REDIS_PORT: 'tcp://10.0.0.5:6379' }).cache.redis.url, 'redis://127.0.0.1:6379');
});

test('READER_ENDPOINT builds the reader URL with the same port, token and TLS', (t) => {
  const config = load({
    PRIMARY_ENDPOINT: 'primary.example',
    READER_ENDPOINT: 'reader.example',
    REDIS_PORT: '6390',
    REDIS_TOKEN: 'tok',
    REDIS_SSL: 'true',
  });
  t.is(config.cache.redis.url, 'rediss://:tok@primary.example:6390');
  t.is(config.cache.redis.readerUrl, 'rediss://:tok@reader.example:6390');
  t.is(load({ READER_ENDPOINT: 'reader.example' }).cache.redis.readerUrl, 'redis://reader.example:6379');
});

test('a bad REDIS_PORT is a problem naming the variable', (t) => {
  const error = configErrorOf(() => load({ PRIMARY_ENDPOINT: 'p', READER_ENDPOINT: 'r', REDIS_PORT: 'tcp://10.0.0.5:6379' }));
  t.is(error.problems.length, 1);
  t.regex(error.problems[0] ?? '', /^REDIS_PORT: .*Kubernetes service-link/);
});

// --- files ------------------------------------------------------------------------------------

test('--config FILE, --config=FILE and MIRROR_CONFIG load a file; --config wins; env wins over files', (t) => {
  const first = writeJson({ server: { port: 7001 }, cache: { ttlSeconds: 60 } });
  const second = writeJson({ server: { port: 7002 } });

  t.is(load({}, { args: ['--config', first] }).server.port, 7001);
  t.is(load({}, { args: [`--config=${first}`] }).server.port, 7001);
  t.is(load({ MIRROR_CONFIG: first }).server.port, 7001);
  t.is(load({ MIRROR_CONFIG: first }, { args: ['--config', second] }).server.port, 7002);

  const config = load({ MIRROR_CONFIG: first, MIRROR_PORT: '7003' });
  t.is(config.server.port, 7003);
  t.is(config.cache.ttlSeconds, 60);

  const resolved = resolveConfig({ env: {}, args: ['--log-level', 'x', '--config', first], configDir: emptyDir });
  t.deepEqual(resolved.files, [first]);
  t.is(resolved.nodeEnv, 'development');
});

test('a --config or MIRROR_CONFIG file that does not exist is an error', (t) => {
  const missing = join(scratch, 'nope.json');
  t.deepEqual(configErrorOf(() => load({}, { args: ['--config', missing] })).problems, [
    `config file not found: ${missing} (given by --config)`,
  ]);
  t.deepEqual(configErrorOf(() => load({ MIRROR_CONFIG: missing })).problems, [
    `config file not found: ${missing} (given by MIRROR_CONFIG)`,
  ]);
  t.deepEqual(configErrorOf(() => load({}, { args: ['--config'] })).problems, [
    '--config: needs a file path (--config FILE or --config=FILE)',
  ]);
});

test('a file can hold lists as host:port strings or objects, and strings are coerced', (t) => {
  const file = writeJson({
    server: { port: '8181' },
    cache: { redis: { sentinels: ['10.0.0.1:26379', { host: '10.0.0.2', port: 26380 }] } },
    auth: { allowedUsers: 'alice,bob' },
  });
  const config = load({ MIRROR_CONFIG: file });
  t.is(config.server.port, 8181);
  t.deepEqual(config.cache.redis.sentinels, [
    { host: '10.0.0.1', port: 26379 },
    { host: '10.0.0.2', port: 26380 },
  ]);
  t.deepEqual(config.auth.allowedUsers, ['alice', 'bob']);
});

test('a file that is not valid JSON is a problem that does not quote the file', (t) => {
  const file = writeJson('{"cache": {"secret": hunter2}}');
  const error = configErrorOf(() => load({ MIRROR_CONFIG: file }));
  t.is(error.problems.length, 1);
  t.true(error.problems[0]?.startsWith(`cannot parse config file ${file}: `));
  t.false(error.message.includes('hunter2'));
});

test('NODE_ENV picks config/<NODE_ENV>.json from the project config dir', (t) => {
  const testConfig = loadConfig({ env: { NODE_ENV: 'test' }, args: [] });
  t.is(testConfig.server.port, 0);
  t.is(testConfig.server.host, '127.0.0.1');
  t.is(testConfig.log.level, 'silent');
  t.is(testConfig.snapshot.store, 'none');

  const development = resolveConfig({ env: {}, args: [] });
  t.is(development.nodeEnv, 'development');
  t.is(development.config.log.level, 'debug');
  t.is(development.config.cache.backend, 'memory');
  t.true(development.files.some((file) => file.endsWith('development.json')));

  const production = loadConfig({ env: { NODE_ENV: 'production', MIRROR_CACHE_SECRET: 's'.repeat(32) }, args: [] });
  t.is(production.cache.backend, 'redis');
  t.is(production.log.level, 'info');

  // No file for this environment: fine, defaults apply.
  t.is(loadConfig({ env: { NODE_ENV: 'staging' }, args: [] }).log.level, 'info');
});

test('production with the redis backend and no cache.secret is refused', (t) => {
  const error = configErrorOf(() => loadConfig({ env: { NODE_ENV: 'production' }, args: [] }));
  t.deepEqual(error.problems, ['cache.secret: required in production with the redis backend (all replicas must share it)']);
  // memory backend in production needs no shared secret
  t.notThrows(() => loadConfig({ env: { NODE_ENV: 'production', MIRROR_CACHE_BACKEND: 'memory' }, args: [] }));
});

test('unknown key in a file, bad port and unknown backend fail together in ONE ConfigError', (t) => {
  const file = writeJson({ cache: { foo: 1, backend: 'mongo' }, server: { prot: 80 } });
  const error = configErrorOf(() => load({ MIRROR_PORT: '70000' }, { args: ['--config', file] }));
  t.is(error.code, 'CONFIG_INVALID');
  t.is(error.name, 'ConfigError');
  t.deepEqual(error.problems, [
    `unknown key 'cache.foo' in ${file}`,
    `unknown key 'server.prot' in ${file} (did you mean 'server.port'?)`,
    'server.port: must be an integer from 0 to 65535 (got 70000, from MIRROR_PORT)',
    `cache.backend: must be one of memory, redis (got 'mongo', from ${file})`,
  ]);
  for (const problem of error.problems) t.true(error.message.includes(problem));
  t.is(error.message.split('\n').length, error.problems.length + 1);
});

test('a bad value from an alias names the alias', (t) => {
  const error = configErrorOf(() => load({ CACHE_TYPE: 'mongo' }));
  t.deepEqual(error.problems, ["cache.backend: must be one of memory, redis (got 'mongo', from CACHE_TYPE)"]);
});

test('a section given a plain value, or a value given an object, is reported', (t) => {
  const file = writeJson({ cache: 'redis', server: { port: { value: 1 } } });
  const error = configErrorOf(() => load({ MIRROR_CONFIG: file }));
  t.is(error.problems.length, 2);
  t.true(error.problems.some((p) => p.startsWith('cache: must be an object')));
  t.true(error.problems.some((p) => p.startsWith('server.port: must be a single value')));
});

test('bad values of every kind are reported, each naming its key', (t) => {
  const error = configErrorOf(() =>
    load({
      MIRROR_TRUST_PROXY: 'maybe',
      MIRROR_UPSTREAM_URL: 'ftp://example.com',
      MIRROR_PUBLIC_URL: 'https://mirror.example.com/?x=1',
      MIRROR_UPSTREAM_TIMEOUT_MS: '10s',
      MIRROR_UPSTREAM_BREAKER_ERROR_THRESHOLD_PERCENTAGE: '150',
      MIRROR_REDIS_SCALE_READS: 'replicas',
      MIRROR_SNAPSHOT_STORE: 'gcs',
      MIRROR_ALLOWED_USERS: 'alice,b o b',
    }),
  );
  const keys = error.problems.map((problem) => problem.slice(0, problem.indexOf(':')));
  t.deepEqual(keys.sort(), [
    'auth.allowedUsers',
    'cache.redis.scaleReads',
    'server.publicUrl',
    'server.trustProxy',
    'snapshot.store',
    'upstream.breaker.errorThresholdPercentage',
    'upstream.timeoutMs',
    'upstream.url',
  ]);
});

test('an invalid secret value is reported without the value', (t) => {
  const error = configErrorOf(() => load({ MIRROR_REDIS_URL: 'http://user:hunter2@redis.internal:6379' }));
  t.deepEqual(error.problems, ['cache.redis.url: must be a redis:// or rediss:// URL (from MIRROR_REDIS_URL)']);
  t.false(error.message.includes('hunter2'));
});

test('sentinels and cluster nodes parse from "host:port,host:port"', (t) => {
  const config = load({
    MIRROR_REDIS_SENTINELS: '10.0.0.1:26379, sentinel-2.internal:26380,[::1]:26381',
    MIRROR_REDIS_SENTINEL_NAME: 'cache',
  });
  t.deepEqual(config.cache.redis.sentinels, [
    { host: '10.0.0.1', port: 26379 },
    { host: 'sentinel-2.internal', port: 26380 },
    { host: '::1', port: 26381 },
  ]);
  t.is(config.cache.redis.sentinelName, 'cache');
  t.deepEqual(load({ MIRROR_REDIS_CLUSTER_NODES: 'a:7000,b:7001' }).cache.redis.clusterNodes, [
    { host: 'a', port: 7000 },
    { host: 'b', port: 7001 },
  ]);
});

test('a bad sentinel entry is reported', (t) => {
  const error = configErrorOf(() => load({ MIRROR_REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2,10.0.0.3:99999' }));
  t.is(error.problems.length, 1);
  t.regex(error.problems[0] ?? '', /^cache\.redis\.sentinels: entry 2 \('10\.0\.0\.2'\) is not host:port/);
});

test('cross-field rules: sentinels with cluster nodes, cert without key, headers timeout, entry size', (t) => {
  const error = configErrorOf(() =>
    load({
      MIRROR_REDIS_SENTINELS: 'a:26379',
      MIRROR_REDIS_CLUSTER_NODES: 'b:7000',
      MIRROR_TLS_CERT: writeJson('not a real cert', 'cert.pem'),
      MIRROR_HEADERS_TIMEOUT_MS: '60000',
      MIRROR_REQUEST_TIMEOUT_MS: '30000',
      MIRROR_CACHE_MAX_ENTRY_BYTES: '2048',
      MIRROR_CACHE_MEMORY_MAX_BYTES: '1024',
    }),
  );
  t.deepEqual(error.problems, [
    'cache.redis.sentinels: cannot be combined with cache.redis.clusterNodes (Sentinel and Cluster are different deployments; set one)',
    'server.tls.key: required when server.tls.cert is set (both or neither)',
    'server.headersTimeoutMs: must not exceed server.requestTimeoutMs (60000 > 30000)',
    'cache.maxEntryBytes: must not exceed cache.memory.maxBytes (2048 > 1024)',
  ]);
});

test('cross-field rules: missing TLS files, s3 without bucket', (t) => {
  const error = configErrorOf(() =>
    load({
      MIRROR_TLS_CERT: join(scratch, 'missing-cert.pem'),
      MIRROR_TLS_KEY: join(scratch, 'missing-key.pem'),
      MIRROR_SNAPSHOT_STORE: 's3',
    }),
  );
  t.deepEqual(error.problems, [
    `server.tls.cert: file not found or not a file: ${join(scratch, 'missing-cert.pem')}`,
    `server.tls.key: file not found or not a file: ${join(scratch, 'missing-key.pem')}`,
    'snapshot.s3.bucket: required when snapshot.store is s3',
  ]);
});

test('MIRROR_PORT from a Kubernetes service link gets a hint', (t) => {
  const error = configErrorOf(() => load({ MIRROR_PORT: 'tcp://10.96.0.12:8080' }));
  t.regex(error.problems[0] ?? '', /^server\.port: .*from MIRROR_PORT; this looks like a Kubernetes service-link variable/);
});

// --- redaction --------------------------------------------------------------------------------

test('redactedConfig hides every secret and keeps the shape', (t) => {
  const config = load({
    MIRROR_CACHE_SECRET: 'cache-secret-value',
    MIRROR_REDIS_URL: 'rediss://:url-password@redis.internal:6380/2',
    MIRROR_REDIS_READER_URL: 'redis://admin:reader-password@reader.internal:6379?password=query-secret',
    MIRROR_REDIS_PASSWORD: 'redis-password-value',
    MIRROR_REDIS_SENTINEL_PASSWORD: 'sentinel-password-value',
    MIRROR_REDIS_USERNAME: 'mirror',
  });
  const redacted = redactedConfig(config) as MirrorConfig;
  const text = JSON.stringify(redacted);
  for (const secret of ['cache-secret-value', 'url-password', 'reader-password', 'query-secret', 'redis-password-value', 'sentinel-password-value']) {
    t.false(text.includes(secret), secret);
  }
  t.is(redacted.cache.secret, '[redacted]');
  t.is(redacted.cache.redis.password, '[redacted]');
  t.is(redacted.cache.redis.sentinelPassword, '[redacted]');
  t.is(redacted.cache.redis.url, 'rediss://[redacted]@redis.internal:6380/2');
  t.is(redacted.cache.redis.readerUrl, 'redis://[redacted]@reader.internal:6379?[redacted]');
  t.is(redacted.cache.redis.username, 'mirror');
  t.is(redacted.server.port, config.server.port);
  t.deepEqual(Object.keys(redacted), Object.keys(config));
  // the original is untouched
  t.is(config.cache.secret, 'cache-secret-value');
});

test('redactedConfig leaves unset secrets empty', (t) => {
  const redacted = redactedConfig(load()) as MirrorConfig;
  t.is(redacted.cache.secret, '');
  t.is(redacted.cache.redis.url, 'redis://127.0.0.1:6379');
});

// --- docs -------------------------------------------------------------------------------------

test('docs/configuration.md is what scripts/gen-config-docs.ts generates', (t) => {
  const current = readFileSync(CONFIG_DOCS_PATH, 'utf8');
  t.is(current, renderConfigDocs(), 'docs/configuration.md is stale: run npm run config:docs');
});

test('the docs list every key, env name and alias', (t) => {
  const docs = renderConfigDocs();
  for (const info of describeConfigKeys()) {
    t.true(docs.includes(`\`${info.key}\``), info.key);
    t.true(docs.includes(`\`${info.env}\``), info.env);
  }
  for (const alias of ['GITHUB_MIRROR_URL', 'CACHE_TYPE', 'GITHUB_USERS', 'PRIMARY_ENDPOINT', 'REDIS_PORT', 'REDIS_TOKEN', 'REDIS_SSL', 'READER_ENDPOINT']) {
    t.true(docs.includes(`\`${alias}\``), alias);
  }
});
