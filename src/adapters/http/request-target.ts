/**
 * Checks and splits a raw request target before anything is forwarded. Only origin-form targets
 * ("/path?query") are accepted; dot segments, encoded separators and control characters are refused,
 * so a request can never name another host or climb out of the upstream base path.
 */
export interface ParsedTarget {
  /** Path without the /api/v3 prefix, exactly as received otherwise. */
  path: string;
  /** Raw query without '?' ('' when none). */
  query: string;
  /** path + ('?' + query when the target had one): what goes upstream, byte for byte. */
  forward: string;
  /** "/api/v3" when the request came in under the GitHub Enterprise layout, else ''. */
  prefix: string;
}

export type TargetCheck = { ok: true; target: ParsedTarget } | { ok: false; reason: string };

const ENTERPRISE_PREFIX = '/api/v3';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function parseTarget(raw: string): TargetCheck {
  if (raw.length === 0 || raw.charCodeAt(0) !== 0x2f /* / */) {
    return { ok: false, reason: 'request target must be a path (origin-form); absolute and authority forms are refused' };
  }
  if (raw.startsWith('//')) return { ok: false, reason: 'request target must not start with //' };
  if (CONTROL.test(raw) || raw.includes('\\')) return { ok: false, reason: 'request target contains a control character or a backslash' };
  if (raw.includes('#')) return { ok: false, reason: 'request target must not contain a fragment' };
  const q = raw.indexOf('?');
  let path = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q + 1);
  let prefix = '';
  if (path === ENTERPRISE_PREFIX || path.startsWith(ENTERPRISE_PREFIX + '/')) {
    prefix = ENTERPRISE_PREFIX;
    path = path.slice(ENTERPRISE_PREFIX.length) || '/';
    // "/api/v3//host/x" would go upstream as "//host/x", a network-path reference to some proxies.
    if (path.startsWith('//')) return { ok: false, reason: 'request path must not start with //' };
  }
  if (path.includes('%') || path.includes('.')) {
    for (const segment of path.split('/')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        return { ok: false, reason: 'request path has a malformed percent-encoding' };
      }
      if (decoded === '.' || decoded === '..') return { ok: false, reason: 'request path must not contain dot segments' };
      if (decoded !== segment && (decoded.includes('/') || decoded.includes('\\') || CONTROL.test(decoded))) {
        return { ok: false, reason: 'request path must not contain encoded separators or control characters' };
      }
    }
  }
  return { ok: true, target: { path, query, forward: q === -1 ? path : `${path}?${query}`, prefix } };
}
