/**
 * redis:// and rediss:// URLs: parsed into connection settings, and redacted (scheme, host, port, db;
 * never the user or password) for logs, events and /readyz. Errors never repeat the URL.
 */
export interface ParsedUrl {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db?: number;
}

/** Parse a redis:// or rediss:// URL. Throws a message that never repeats the URL (it may hold a password). */
export function parseRedisUrl(url: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('redis: the URL is not a valid redis:// or rediss:// URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`redis: unsupported URL scheme "${parsed.protocol}" (use redis:// or rediss://)`);
  }
  const result: ParsedUrl = {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    tls: parsed.protocol === 'rediss:',
  };
  if (parsed.username !== '') result.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') result.password = decodeURIComponent(parsed.password);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '') {
    const n = Number(db);
    if (!Number.isInteger(n) || n < 0) throw new TypeError('redis: the URL path must be a database number');
    result.db = n;
  }
  return result;
}

/** The URL without user or password, for logs and /readyz. */
export function redactRedisUrl(url: string): string {
  try {
    const p = parseRedisUrl(url);
    const host = p.host.includes(':') ? `[${p.host}]` : p.host;
    return `${p.tls ? 'rediss' : 'redis'}://${host}:${p.port}${p.db === undefined ? '' : `/${p.db}`}`;
  } catch {
    return 'redis://<invalid url>';
  }
}
