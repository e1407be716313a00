/**
 * The Python ghmirror's environment variables, accepted as aliases: each derives a MIRROR_*
 * variable when that one is unset (GITHUB_MIRROR_URL, CACHE_TYPE, GITHUB_USERS, PRIMARY_ENDPOINT /
 * READER_ENDPOINT with REDIS_PORT, REDIS_TOKEN and REDIS_SSL). `envAliases` documents them.
 */
import { describeValue, parseBoolean, parseInteger } from './formats.js';

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

export type Env = Record<string, string>;

export const SERVICE_LINK = /^tcp:\/\/\S+:\d+$/;
export const SERVICE_LINK_HINT =
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
export function applyAliases(env: Env, problems: string[]): { env: Env; origins: Map<string, string> } {
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
