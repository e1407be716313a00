/**
 * The floor of a revalidating cache in Node, the yardstick of issue 13 (bench code, not the product):
 * node:http in front, a keep-alive undici Pool behind, a Map keyed by Authorization + URL. A stored
 * 200 is revalidated on every request with its ETag in If-None-Match; a 304 replays the stored 200.
 * A 200 with an ETag is stored; anything else is relayed as is. No coalescing, no sealing, no log,
 * no metrics, no eviction.
 *
 * With `freshMs` > 0 (the bench's `floor-cache-fresh`) a stored 200 younger than that is replayed
 * without asking upstream: the least a cache that serves a fresh hit from memory can cost in Node.
 * A 304 starts the window again, as the mirror's revalidation does (before it did, the floor asked
 * upstream on every request once its first window had passed).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

interface Stored {
  etag: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  storedAt: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

export async function startFloorCache(upstreamUrl: string, port = 0, freshMs = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const pool = new Pool(upstreamUrl, { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 });
  const cache = new Map<string, Stored>();
  const server = createServer({ keepAlive: true, noDelay: true }, (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const { authorization, accept } = req.headers;
    const key = `${authorization ?? ''} ${path}`;
    const stored = cache.get(key);
    if (stored !== undefined && freshMs > 0 && Date.now() - stored.storedAt < freshMs) {
      res.writeHead(200, stored.headers);
      res.end(stored.body);
      return;
    }
    const headers: Record<string, string> = {};
    if (authorization !== undefined) headers.authorization = authorization;
    if (accept !== undefined) headers.accept = accept;
    if (stored !== undefined) headers['if-none-match'] = stored.etag;
    pool
      .request({ path, method: 'GET', headers })
      .then(async ({ statusCode, headers: upstream, body }) => {
        const bytes = Buffer.from(await body.arrayBuffer());
        if (statusCode === 304 && stored !== undefined) {
          stored.storedAt = Date.now(); // a 304 revalidates: the window starts again, as in the mirror
          res.writeHead(200, stored.headers);
          res.end(stored.body);
          return;
        }
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstream)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
        const etag = upstream.etag;
        if (statusCode === 200 && typeof etag === 'string') cache.set(key, { etag, headers: out, body: bytes, storedAt: Date.now() });
        res.writeHead(statusCode, out);
        res.end(bytes);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await pool.close();
    },
  };
}
