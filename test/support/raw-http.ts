import { connect } from 'node:net';

/** Sends raw bytes to host:port and returns the whole answer as text (for requests no client library would send). */
export function rawRequest(url: string, payload: string, timeoutMs = 5000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString());
    }, timeoutMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString());
      else reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString());
    });
  });
}

/** Status code and JSON body of a raw HTTP/1.1 answer. */
export function parseRaw(answer: string): { status: number; body: string } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  const at = answer.indexOf('\r\n\r\n');
  return { status, body: at === -1 ? '' : answer.slice(at + 4) };
}
