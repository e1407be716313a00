/**
 * A closed-loop HTTP/1.1 load generator on raw keep-alive sockets: `connections` clients each send a
 * pre-encoded GET, read the whole answer, and send the next, for `durationMs`. Latencies are kept in
 * microseconds, so sub-millisecond differences (what Redis adds to a hit) are visible — autocannon
 * rounds to whole milliseconds. Parsing is minimal (status line, Content-Length / chunked), so the
 * generator costs little CPU next to the servers it measures on a 2-core machine.
 *
 * `variants` (paths and/or headers) are taken in turn, one per request across all connections, so
 * with more variants than connections no two requests in flight are alike (nothing coalesces);
 * `maxRequests` stops the load once that many were sent (a cache fill).
 */
import { connect, type Socket } from 'node:net';

export interface LoadOptions {
  url: string;
  connections: number;
  durationMs: number;
  headers?: Record<string, string>;
  /** Taken in turn, one per request; each overrides the path and adds headers to `headers`. */
  variants?: Array<{ path?: string; headers?: Record<string, string> }>;
  /** Send no more than this many requests in all. */
  maxRequests?: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  statuses: Record<string, number>;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const encode = (path: string, headers: Record<string, string>): Buffer => {
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${target.host}`, 'Connection: keep-alive'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    return Buffer.from(lines.join('\r\n') + '\r\n\r\n');
  };
  const defaultPath = `${target.pathname}${target.search}`;
  const base = options.headers ?? {};
  const requests =
    options.variants === undefined || options.variants.length === 0
      ? [encode(defaultPath, base)]
      : options.variants.map((v) => encode(v.path ?? defaultPath, { ...base, ...v.headers }));
  const maxRequests = options.maxRequests ?? Infinity;
  let sent = 0;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  function client(): Promise<void> {
    return new Promise((resolve) => {
      const socket: Socket = connect(Number(target.port || 80), target.hostname);
      socket.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      const send = () => {
        if (sent >= maxRequests || performance.now() >= deadline) {
          socket.end();
          resolve();
          return;
        }
        const request = requests[sent % requests.length] as Buffer;
        sent++;
        sentAt = performance.now();
        socket.write(request);
      };
      socket.on('connect', send);
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const headEnd = buffer.indexOf(CRLFCRLF);
          if (headEnd === -1) return;
          const head = buffer.subarray(0, headEnd).toString('latin1');
          const status = head.slice(9, 12);
          const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          let total: number;
          if (lengthMatch) {
            total = headEnd + 4 + Number(lengthMatch[1]);
          } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
            const end = buffer.indexOf('\r\n0\r\n\r\n', headEnd);
            if (end === -1) return;
            total = end + 7;
          } else {
            total = headEnd + 4; // 204 / 304: no body
          }
          if (buffer.length < total) return;
          buffer = buffer.subarray(total);
          latencies.push(performance.now() - sentAt);
          statuses[status] = (statuses[status] ?? 0) + 1;
          send();
        }
      });
      socket.on('error', () => {
        errors++;
        resolve();
      });
      socket.on('close', () => resolve());
    });
  }

  await Promise.all(Array.from({ length: options.connections }, () => client()));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => {
    if (latencies.length === 0) return 0;
    const v = latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
    return Math.round(v * 1000) / 1000;
  };
  const ok = Object.entries(statuses)
    .filter(([s]) => s.startsWith('2') || s === '304')
    .reduce((n, [, c]) => n + c, 0);
  return {
    requests: latencies.length,
    rps: Math.round(latencies.length / elapsed),
    p50_ms: pct(50),
    p90_ms: pct(90),
    p99_ms: pct(99),
    errors,
    non2xx: latencies.length - ok,
    statuses,
  };
}
