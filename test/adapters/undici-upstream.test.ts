/**
 * UndiciUpstream against a real HTTP server: reads and writes use separate pools (writes holding every
 * write connection do not delay a read), a call waiting for a free connection rejects at its own
 * deadline, and the decoded body limit is the same with and without gzip (UPSTREAM_BODY_TOO_LARGE).
 */
import test from 'ava';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { UndiciUpstream, type UndiciUpstreamOptions } from '../../src/adapters/github/undici-upstream.adapter.js';
import { ErrorCode, isMirrorError } from '../../src/domain/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];
const upstreams: UndiciUpstream[] = [];
const sockets = new Set<Socket>();

test.after.always(async () => {
  for (const upstream of upstreams) await upstream.destroy();
  for (const socket of sockets) socket.destroy();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function upstream(url: string, options: Partial<UndiciUpstreamOptions> = {}): UndiciUpstream {
  const made = new UndiciUpstream({ url, timeoutMs: 2000, connectTimeoutMs: 1000, connections: 2, writeConnections: 1, maxBodyBytes: 1 << 20, ...options });
  upstreams.push(made);
  return made;
}

test('writes holding every write connection do not delay a read', async (t) => {
  const held: ServerResponse[] = [];
  const url = await serve((req, res) => {
    if (req.method === 'POST') {
      held.push(res); // never answered while the read runs
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', etag: '"1"' }).end('{"ok":true}');
  });
  const sut = upstream(url, { connections: 2, writeConnections: 2, timeoutMs: 3000 });
  const writes = [0, 1, 2].map(() => sut.forward({ method: 'POST', target: '/repos/o/r/issues', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }).catch((error: unknown) => error));
  for (let i = 0; i < 100 && held.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(held.length, 2, 'both write connections are taken');
  const read = await sut.fetch({ method: 'GET', target: '/repos/o/r', headers: {} });
  t.is(read.status, 200);
  t.is(held.length, 2, 'the read did not go through a write connection');
  for (const res of held) res.end();
  await Promise.all(writes);
});

test('a call waiting for a free connection rejects with UPSTREAM_TIMEOUT at its own deadline', async (t) => {
  let firstBodyDone = false;
  let dribbling: NodeJS.Timeout | undefined;
  const url = await serve((req, res) => {
    req.resume();
    // the first write's answer streams for a long time (its head came at once: within its deadline)
    res.writeHead(200, { 'content-type': 'text/plain' });
    let sent = 0;
    dribbling = setInterval(() => {
      res.write('x');
      if (++sent === 30) {
        clearInterval(dribbling);
        res.end();
      }
    }, 100);
  });
  const sut = upstream(url, { writeConnections: 1, timeoutMs: 400 });
  const first = await sut.forward({ method: 'POST', target: '/a', headers: {}, body: Buffer.from('{}') });
  const draining = (async () => {
    for await (const chunk of first.body) void chunk;
    firstBodyDone = true;
  })();
  const error = await t.throwsAsync(sut.forward({ method: 'POST', target: '/b', headers: {}, body: Buffer.from('{}') }));
  t.true(isMirrorError(error, ErrorCode.UPSTREAM_TIMEOUT), String(error));
  t.false(firstBodyDone, 'rejected while the connection it waited for was still busy');
  await draining;
  clearInterval(dribbling);
});

test('the decoded body limit is the same with and without gzip; over it is UPSTREAM_BODY_TOO_LARGE', async (t) => {
  const limit = 64 * 1024;
  // incompressible: the gzipped form of a body at the limit is larger than the limit
  const atLimit = randomBytes(limit);
  const overLimit = randomBytes(limit + 1);
  const compressible = Buffer.alloc(limit + 1, 'a');
  const url = await serve((req, res) => {
    const body = req.url?.startsWith('/at') ? atLimit : req.url?.startsWith('/over') ? overLimit : compressible;
    if (req.url?.endsWith('gz')) res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }).end(gzipSync(body));
    else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  const sut = upstream(url, { maxBodyBytes: limit });
  t.true(gzipSync(atLimit).byteLength > limit);
  for (const target of ['/at', '/at-gz']) {
    const answer = await sut.fetch({ method: 'GET', target, headers: {} });
    t.is(answer.body.byteLength, limit, target);
    t.true(Buffer.from(answer.body).equals(atLimit), target);
  }
  for (const target of ['/over', '/over-gz', '/compressible-gz']) {
    const error = await t.throwsAsync(sut.fetch({ method: 'GET', target, headers: {} }));
    t.true(isMirrorError(error, ErrorCode.UPSTREAM_BODY_TOO_LARGE), `${target}: ${String(error)}`);
  }
});
