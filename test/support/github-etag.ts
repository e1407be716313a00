/**
 * GitHub's ETag formula as the fake GitHub server (test/support/fake-github.ts) applies it, for tests
 * that need the ETag a credential would get for a body.
 *
 * Measured on api.github.com (undocumented, see /work/shared/GITHUB-FACTS.md): SHA-256, in hex, over
 * the value of each request header among Accept, Authorization and Cookie that is present, in that
 * order, each value followed by ':', then the uncompressed body. JSON answers carry it weak (W/"…").
 */
import { createHash } from 'node:crypto';

/** The request headers the ETag depends on, in the order they are hashed. */
export const ETAG_VARY_HEADERS = ['accept', 'authorization', 'cookie'] as const;

/** Request headers as node:http, undici or a plain object give them (names in any case). */
export type EtagRequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface GitHubEtagOptions {
  /** `W/"…"` (default, as GitHub sends JSON) or `"…"`. */
  weak?: boolean;
}

/** The values of header `name` (case-insensitive); several when the request repeated it. */
function valuesOf(headers: EtagRequestHeaders, name: string): readonly string[] {
  let found: readonly string[] = [];
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== name) continue;
    const value = headers[key];
    if (value === undefined) continue;
    found = [...found, ...(typeof value === 'string' ? [value] : value)];
  }
  return found;
}

/** The hex SHA-256 GitHub puts between the quotes of the ETag of `body` for a request with `headers`. */
export function githubEtagHash(headers: EtagRequestHeaders, body: string | Uint8Array): string {
  const hash = createHash('sha256');
  for (const name of ETAG_VARY_HEADERS) {
    for (const value of valuesOf(headers, name)) hash.update(`${value}:`, 'utf8');
  }
  hash.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return hash.digest('hex');
}

/** The ETag GitHub gives `body` for a request with `headers`: `W/"<sha256>"` unless `weak: false`. */
export function githubEtag(headers: EtagRequestHeaders, body: string | Uint8Array, options: GitHubEtagOptions = {}): string {
  const quoted = `"${githubEtagHash(headers, body)}"`;
  return options.weak === false ? quoted : `W/${quoted}`;
}
