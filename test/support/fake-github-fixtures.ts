/**
 * Reads the recorded api.github.com answers of @octokit/fixtures and turns the successful GETs into
 * resource specs for the fake GitHub server (test/support/fake-github.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** One GET answer of a fixture, ready for `FakeGitHub.setResource` once URLs are rewritten. */
export interface FixtureResource {
  /** Path without the query string. */
  path: string;
  /** The recorded body: the raw JSON text for JSON answers, the text itself otherwise. */
  bodyText: string;
  contentType: string | undefined;
  /** Recorded headers worth replaying (lower-case), without per-response or validator headers. */
  headers: Record<string, string>;
  hasEtag: boolean;
  hasLastModified: boolean;
}

interface FixtureEntry {
  scope?: string;
  method?: string;
  path?: string;
  status?: number;
  response?: unknown;
  responseIsBinary?: boolean;
  headers?: Record<string, unknown>;
}

/**
 * Headers the fake computes itself for every answer (rate limit, date, request id, validators,
 * caching policy, transfer framing), so the recorded values are dropped.
 */
const DROPPED_HEADERS = new Set([
  'date',
  'x-github-request-id',
  'etag',
  'last-modified',
  'cache-control',
  'vary',
  'x-oauth-scopes',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'content-type',
]);

let cached: FixtureResource[] | undefined;

function scenariosDir(): string {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('@octokit/fixtures/package.json');
  return path.join(path.dirname(packageJson), 'scenarios', 'api.github.com');
}

/**
 * Every `GET` answered 200 by api.github.com in the fixtures, first entry per path (scenarios in
 * name order, entries in recorded order). Read once per process.
 */
export function readOctokitFixtures(): FixtureResource[] {
  if (cached !== undefined) return cached;
  const dir = scenariosDir();
  const seen = new Set<string>();
  const out: FixtureResource[] = [];
  for (const scenario of readdirSync(dir).sort()) {
    let raw: string;
    try {
      raw = readFileSync(path.join(dir, scenario, 'normalized-fixture.json'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') {
        continue;
      }
      throw error;
    }
    const entries = JSON.parse(raw) as FixtureEntry[];
    for (const entry of entries) {
      if (entry.method?.toLowerCase() !== 'get' || entry.status !== 200) continue;
      if (entry.scope !== undefined && !entry.scope.startsWith('https://api.github.com')) continue;
      if (entry.responseIsBinary === true || typeof entry.path !== 'string') continue;
      const query = entry.path.indexOf('?');
      const resourcePath = query === -1 ? entry.path : entry.path.slice(0, query);
      if (seen.has(resourcePath)) continue;
      seen.add(resourcePath);

      const headers: Record<string, string> = {};
      let contentType: string | undefined;
      let hasEtag = false;
      let hasLastModified = false;
      for (const [rawName, value] of Object.entries(entry.headers ?? {})) {
        const name = rawName.toLowerCase();
        if (name === 'etag') hasEtag = true;
        if (name === 'last-modified') hasLastModified = true;
        if (name === 'content-type' && typeof value === 'string') contentType = value;
        if (name.startsWith('x-ratelimit-') || DROPPED_HEADERS.has(name)) continue;
        if (typeof value === 'string' || typeof value === 'number') headers[name] = String(value);
      }
      const bodyText = typeof entry.response === 'string' ? entry.response : JSON.stringify(entry.response);
      out.push({ path: resourcePath, bodyText, contentType, headers, hasEtag, hasLastModified });
    }
  }
  cached = out;
  return out;
}
