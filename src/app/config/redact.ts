/**
 * Redaction for the start log line: the configuration with every sensitive value replaced, so no
 * secret (token, password, credentials in a Redis URL) is ever logged.
 */
import { getPath, setPath, type Json } from './json.js';
import { LEAVES } from './schema.js';
import type { MirrorConfig } from './types.js';

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
