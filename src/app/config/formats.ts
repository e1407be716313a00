/**
 * The custom convict formats of the schema, each with a one-line description for the docs, and
 * the small parsers the ghmirror aliases and the loader share. Importing this module registers
 * every format with convict (load.ts imports it before it builds the schema).
 */
import convict from 'convict';
import { CACHE_BACKENDS, LOG_LEVELS, REDIS_SCALE_READS, SNAPSHOT_STORES, type HostPort } from './types.js';

interface FormatDefinition {
  doc: string;
  validate: (value: unknown) => void;
  coerce?: (raw: string) => unknown;
}

function fail(message: string): never {
  throw new Error(message);
}

export function parseInteger(raw: string): number | string {
  const text = raw.trim();
  return /^[+-]?\d+$/.test(text) ? Number(text) : raw;
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

export function parseBoolean(raw: string): boolean | string {
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

export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = `'${JSON.stringify(value).slice(1, -1)}'`;
  else if (value === undefined) text = 'nothing';
  else text = JSON.stringify(value) ?? typeof value;
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

const LOGIN = /^[^\s,:]{1,100}$/;

export const FORMATS = {
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
