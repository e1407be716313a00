/**
 * The floor a Node proxy reaches on this machine: a minimal pass-through over an undici Pool with
 * pool.stream(), no cache, no checks. It lives here, not in src/: it is the yardstick, not the product.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { Pool } from 'undici';

export function startBareProxy(upstreamUrl: string, port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const pool = new Pool(upstreamUrl, { connections: 128, pipelining: 1 });
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    pool
      .stream({ path: req.url ?? '/', method: 'GET', headers }, ({ statusCode, headers: upstreamHeaders }) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamHeaders)) {
          if (value !== undefined && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') out[name] = value;
        }
        res.writeHead(statusCode, out);
        return new Writable({
          write(chunk, _encoding, callback) {
            res.write(chunk, callback);
          },
          final(callback) {
            res.end(callback);
          },
        });
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      resolve({
        url: `http://127.0.0.1:${actual}`,
        close: async () => {
          await new Promise((r) => server.close(r));
          server.closeAllConnections();
          await pool.close();
        },
      });
    });
  });
}
