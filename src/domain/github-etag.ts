/**
 * GitHub's ETag formula (undocumented, measured on api.github.com; /work/shared/GITHUB-FACTS.md): the
 * hex SHA-256 over the values of the request headers Accept, Authorization and Cookie that the answer
 * varies on — each present value followed by ':', in that order — then the uncompressed body, sent
 * weak (`W/"…"`) for JSON. The mirror uses it to ask GitHub, with a credential's own request, whether
 * a body it already holds is that credential's answer too. Correctness never depends on it: a 304 is
 * only trusted when it names one of the ETags sent, and an ETag made with this formula from a body
 * can only match when GitHub hashed that very body for that very credential.
 */
import type { HeaderMap } from './model.js';
import type { DigestPort } from './ports/digest.port.js';

/** The request headers the ETag depends on, in the order they are hashed. */
export const ETAG_REQUEST_HEADERS = ['accept', 'authorization', 'cookie'] as const;

/** The body GitHub answers for an empty list. */
export const EMPTY_LIST_BODY: Uint8Array = new Uint8Array([0x5b, 0x5d]);

/**
 * The ETag GitHub gives `body` for a request sent with `requestHeaders` (lower-case names, as the
 * mirror sends them upstream). `vary` is the Vary of a stored answer: only the headers it names are
 * hashed; absent, all three are (GitHub's JSON answers vary on all of them).
 */
export function githubEtagFor(digest: DigestPort, requestHeaders: HeaderMap, body: Uint8Array, vary?: string): string {
  const varied = varyNames(vary);
  const chunks: Array<string | Uint8Array> = [];
  for (const name of ETAG_REQUEST_HEADERS) {
    if (varied !== undefined && !varied.has(name)) continue;
    const value = requestHeaders[name];
    if (value === undefined) continue;
    for (const one of typeof value === 'string' ? [value] : value) chunks.push(`${one}:`);
  }
  chunks.push(body);
  return `W/"${digest.sha256Hex(chunks)}"`;
}

/** An ETag without its weak prefix: what the weak comparison of RFC 9110 §13.1.2 compares. */
export function opaqueTag(etag: string): string {
  const trimmed = etag.trim();
  return trimmed.startsWith('W/') ? trimmed.slice(2) : trimmed;
}

function varyNames(vary: string | undefined): Set<string> | undefined {
  if (vary === undefined) return undefined;
  const names = new Set(vary.split(',').map((name) => name.trim().toLowerCase()));
  return names.has('*') ? undefined : names;
}
