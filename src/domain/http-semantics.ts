/**
 * Pure HTTP rules the use cases apply: which headers are stored, which travel fresh, what a rate
 * limit looks like, what makes an answer cacheable. No I/O.
 */
import type { HeaderMap } from './model.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus the ones a proxy must not relay. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

/** Headers that come fresh from every upstream answer (304 included) and are never stored. */
export function isPerResponseHeader(name: string): boolean {
  return name.startsWith('x-ratelimit-') || name === 'date' || name === 'x-github-request-id' || name === 'retry-after';
}

/** Headers that describe one transfer, not the resource: never stored, never copied from an entry. */
const TRANSFER_HEADERS = new Set(['content-length', 'content-encoding', 'set-cookie', 'age', 'x-cache', 'cache-status']);

/**
 * Headers GitHub sets from the credential, not the resource (its scopes, its expiry, its SSO state):
 * they stay in that credential's own entry and never travel with a body shared across credentials.
 */
const CREDENTIAL_HEADERS = new Set([
  'etag',
  'x-oauth-scopes',
  'x-accepted-oauth-scopes',
  'x-accepted-github-permissions',
  'x-oauth-client-id',
  'github-authentication-token-expiration',
  'x-github-sso',
]);

export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADERS.has(name);
}

/** A stored answer's headers without the credential's own (for a representation shared across credentials). */
export function resourceHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (!CREDENTIAL_HEADERS.has(name)) out[name] = headers[name] as string;
  }
  return out;
}

export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function joinValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The headers of an upstream answer worth keeping in a cache entry. */
export function storableHeaders(headers: HeaderMap): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || TRANSFER_HEADERS.has(name) || isPerResponseHeader(name)) continue;
    const value = joinValue(headers[name]);
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}

/** The per-response headers of an upstream answer (rate-limit state, date, request id). */
export function perResponseHeaders(headers: HeaderMap): Record<string, string> {
  return withPerResponseHeaders({}, headers);
}

/** `target` with the per-response headers of `headers` written over it (no object in between). */
export function withPerResponseHeaders(target: Record<string, string>, headers: HeaderMap): Record<string, string> {
  for (const name in headers) {
    if (!isPerResponseHeader(name)) continue;
    const value = joinValue(headers[name]);
    if (value !== undefined) target[name] = value;
  }
  return target;
}

/** Headers of an upstream answer as relayed to a client (transfer-level ones dropped). */
export function relayableHeaders(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || TRANSFER_HEADERS.has(name)) continue;
    const value = joinValue(headers[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** GitHub's rate-limit signature: 429, or 403 with remaining 0, a Retry-After, or the rate-limit message. */
export function isRateLimited(status: number, headers: HeaderMap, body: Uint8Array): boolean {
  if (status === 429) return true;
  if (status !== 403) return false;
  if (firstValue(headers['x-ratelimit-remaining']) === '0') return true;
  if (headers['retry-after'] !== undefined) return true;
  if (body.byteLength > 0 && body.byteLength < 4096) {
    return /rate limit/i.test(new TextDecoder().decode(body));
  }
  return false;
}

export function cacheControlDirectives(value: string | undefined): Map<string, string | true> {
  const directives = new Map<string, string | true>();
  if (value === undefined) return directives;
  for (const part of value.split(',')) {
    const [rawName, ...rest] = part.split('=');
    const name = rawName?.trim().toLowerCase();
    if (!name) continue;
    directives.set(name, rest.length > 0 ? rest.join('=').trim().replace(/^"|"$/g, '') : true);
  }
  return directives;
}

/** Item count when the body is a JSON array, else undefined (parsed once, when an entry is stored). */
export function jsonArrayLength(contentType: string | undefined, body: Uint8Array): number | undefined {
  if (contentType === undefined || !contentType.includes('json')) return undefined;
  let i = 0;
  while (i < body.byteLength && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  if (body[i] !== 0x5b /* [ */) return undefined;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
    return Array.isArray(parsed) ? parsed.length : undefined;
  } catch {
    return undefined;
  }
}

/** True when a Link header has a rel="next" entry. */
export function hasNextLink(link: string | undefined): boolean {
  return link !== undefined && /rel="?next"?/.test(link);
}

/** The page size GitHub applies to a list request: per_page (1..100), 30 when absent. */
export function pageSizeOf(query: string): number {
  if (!query.includes('per_page')) return 30;
  const raw = new URLSearchParams(query).get('per_page');
  const n = raw === null ? NaN : Number.parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 1) return 30;
  return Math.min(n, 100);
}

/** Weak comparison of an If-None-Match list against an ETag (RFC 9110 §13.1.2). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string | undefined): boolean {
  if (ifNoneMatch === undefined || etag === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const target = opaque(etag);
  return ifNoneMatch.split(',').some((candidate) => candidate.trim() === '*' || opaque(candidate) === target);
}

/** Client headers the mirror replaces with its own when it asks upstream. */
const STRIPPED_FOR_UPSTREAM = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'accept-encoding', 'content-length', 'range']);

/** Client headers as sent upstream for a cached GET: validators and encoding are the mirror's. */
export function upstreamHeaders(headers: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const name in headers) {
    if (!STRIPPED_FOR_UPSTREAM.has(name)) out[name] = headers[name];
  }
  return out;
}

/**
 * `target` with the headers of a 304 that update the served answer written over it (rate-limit
 * state, date, request id, validators, caching), with no object in between.
 */
export function withRefreshedHeaders(target: Record<string, string>, headers: HeaderMap): Record<string, string> {
  withPerResponseHeaders(target, headers);
  for (const name of REFRESHED_BY_304) {
    const value = joinValue(headers[name]);
    if (value !== undefined) target[name] = value;
  }
  return target;
}

const REFRESHED_BY_304 = ['etag', 'last-modified', 'cache-control', 'vary', 'expires'] as const;

/** Entity headers dropped from a 304 sent to a client. */
export function withoutEntityHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    if (name !== 'content-type' && name !== 'content-length' && name !== 'content-encoding') out[name] = headers[name] as string;
  }
  return out;
}
