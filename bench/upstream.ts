/**
 * The fake GitHub of `npm run bench`: a small node:http server answering like api.github.com for
 * what the bench asks for, counting the requests it answers and the 304s among them (read by the
 * runner through bench/server.ts). ETags follow GitHub's formula (GITHUB-FACTS.md): SHA-256 over
 * the present values of Accept, Authorization and Cookie, each followed by ':', then the body — so
 * every token gets its own ETag for the same body, as on GitHub. A matching If-None-Match (weak
 * comparison, a list allowed) answers a bodiless 304, free for an authenticated request.
 *
 *   BENCH_RESOURCE          the ~4.5 KB repository object, its URLs pointing at this server
 *   /bench/items/<n>        a distinct ~4 KB object per n (what fills a cache)
 *
 * The repository body and the per-credential ETags are computed once and kept (bounded), so a 304
 * costs little; item bodies are made when asked (each is asked once or twice).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BENCH_BODY, BENCH_RESOURCE, ITEM_PREFIX, itemBody } from './scenario.js';

const LIMIT = 5_000_000;
const VARY = 'Accept, Authorization, Cookie, X-GitHub-OTP';
const ETAG_MEMO_MAX = 100_000;

export interface BenchUpstream {
  url: string;
  /** Requests answered so far (any status), and how many of them were 304 Not Modified. */
  counts(): { requests: number; notModified: number };
  close(): Promise<void>;
}

/** GitHub's ETag of `body` for a request with these header values. */
export function githubEtag(accept: string | undefined, authorization: string | undefined, cookie: string | undefined, body: Buffer): string {
  const hash = createHash('sha256');
  for (const value of [accept, authorization, cookie]) if (value !== undefined) hash.update(`${value}:`);
  return `"${hash.update(body).digest('hex')}"`;
}

function noneMatch(ifNoneMatch: string, etag: string): boolean {
  const target = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const raw of ifNoneMatch.split(',')) {
    const candidate = raw.trim();
    if (candidate === '*' || (candidate.startsWith('W/') ? candidate.slice(2) : candidate) === target) return true;
  }
  return false;
}

export async function startBenchUpstream(port = 0): Promise<BenchUpstream> {
  let answered = 0;
  let notModified = 0;
  let requestId = 0;
  const resetAt = String(Math.floor(Date.now() / 1000) + 3600);
  const spent = new Map<string, number>();
  const etags = new Map<string, string>();
  let base = '';
  let repository = Buffer.alloc(0);

  const bodyOf = (path: string): Buffer | undefined => {
    if (path === BENCH_RESOURCE) return repository;
    if (!path.startsWith(ITEM_PREFIX)) return undefined;
    const n = Number(path.slice(ITEM_PREFIX.length));
    return Number.isSafeInteger(n) && n >= 0 ? Buffer.from(itemBody(n, base)) : undefined;
  };

  const server = createServer({ keepAlive: true, noDelay: true }, (req: IncomingMessage, res: ServerResponse) => {
    answered++;
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const { accept, authorization, cookie } = req.headers;
    const credential = authorization ?? '';
    const body = bodyOf(path);
    const used = spent.get(credential) ?? 0;
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(LIMIT),
      'x-ratelimit-remaining': String(LIMIT - used),
      'x-ratelimit-used': String(used),
      'x-ratelimit-reset': resetAt,
      'x-ratelimit-resource': 'core',
      'x-github-request-id': `BENCH:${(++requestId).toString(16).toUpperCase()}`,
      'x-github-media-type': 'github.v3; format=json',
      'x-github-api-version-selected': '2022-11-28',
      'cache-control': authorization === undefined ? 'public, max-age=60, s-maxage=60' : 'private, max-age=60, s-maxage=60',
      vary: VARY,
    };
    if (body === undefined) {
      spent.set(credential, used + 1);
      res.writeHead(404, { ...headers, 'content-type': 'application/json; charset=utf-8' });
      res.end('{"message":"Not Found"}');
      return;
    }
    const memoKey = `${accept ?? ''}\n${credential}\n${cookie ?? ''}\n${path}`;
    let etag = etags.get(memoKey);
    if (etag === undefined) {
      etag = githubEtag(accept, authorization, cookie, body);
      if (etags.size >= ETAG_MEMO_MAX) etags.clear();
      etags.set(memoKey, etag);
    }
    headers.etag = etag;
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && noneMatch(ifNoneMatch, etag)) {
      if (authorization === undefined) spent.set(credential, used + 1);
      notModified++;
      res.writeHead(304, headers);
      res.end();
      return;
    }
    spent.set(credential, used + 1);
    headers['content-type'] = 'application/json; charset=utf-8';
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  repository = Buffer.from(JSON.stringify(BENCH_BODY).replaceAll('https://api.github.com', base));
  return {
    url: base,
    counts: () => ({ requests: answered, notModified }),
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}
