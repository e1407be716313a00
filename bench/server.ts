/**
 * One server of the benchmark in its own process, so the load generator does not share its event loop:
 *   tsx bench/server.ts upstream | proxy <upstreamUrl> | floor <upstreamUrl> | floor-fresh <upstreamUrl> [freshMs] | mirror <upstreamUrl> [MIRROR_X=value ...]
 * Started by bench/run.ts with an IPC channel: it sends {url} once listening and answers every
 * {type: 'usage'} with its own CPU time (process.cpuUsage(), µs), its RSS, the bytes its heap
 * allocated and its GC time (gc-ledger.ts) and, for the upstream, the requests answered so far. Exits on SIGTERM, SIGINT or when the runner goes away.
 *
 * A mirror runs with production defaults (NODE_ENV=production: access log at info on stdout, which
 * the runner points at /dev/null or a file; metrics, sealing and breakers on; a cache.secret), plus
 * the MIRROR_* overrides given (backend, Redis URL, freshness window, memory size). Snapshots are off
 * (snapshot.store=none): a periodic job, not a per-request cost, and a restore would carry state
 * from one bench run into the next; and the governor's points budget, raised above the bench's load.
 */
// Each kind imports only its own modules, so a floor's process does not carry the mirror's code.
import { GcLedger } from './gc-ledger.js';

export interface Usage {
  type: 'usage';
  /** User + system CPU of this process since it started, µs. */
  cpuUs: number;
  /** Of which in the kernel (system calls: socket reads and writes, mostly), µs. */
  systemUs: number;
  rssBytes: number;
  /** Highest RSS of the process so far. */
  maxRssBytes: number;
  /** Requests the upstream answered (upstream only). */
  requests?: number;
  /** Of which 304 Not Modified (upstream only). */
  notModified?: number;
  /** Bytes the JavaScript heap allocated since start (gc-ledger.ts). */
  allocatedBytes: number;
  /** Main-thread garbage collection since start, µs. */
  gcUs: number;
}

async function main(): Promise<void> {
  const [kind, upstreamUrl = '', ...overrides] = process.argv.slice(2);
  let close: () => Promise<void>;
  let url: string;
  let counts: (() => { requests: number; notModified: number }) | undefined;
  if (kind === 'upstream') {
    const upstream = await (await import('./upstream.js')).startBenchUpstream();
    url = upstream.url;
    counts = upstream.counts;
    close = upstream.close;
  } else if (kind === 'proxy' || kind === 'floor' || kind === 'floor-fresh') {
    const server =
      kind === 'proxy'
        ? await (await import('./bare-proxy.js')).startBareProxy(upstreamUrl)
        : await (await import('./floor-cache.js')).startFloorCache(upstreamUrl, 0, kind === 'floor-fresh' ? Number(overrides[0] ?? '60000') : 0);
    url = server.url;
    close = server.close;
  } else if (kind === 'mirror') {
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      MIRROR_HOST: '127.0.0.1',
      MIRROR_PORT: '0',
      MIRROR_UPSTREAM_URL: upstreamUrl,
      MIRROR_CACHE_BACKEND: 'memory',
      MIRROR_REDIS_URL: 'redis://127.0.0.1:1',
      MIRROR_CACHE_SECRET: 'bench-cache-secret-0123456789abcdef',
      MIRROR_SNAPSHOT_STORE: 'none',
      // The governor stays on (each upstream call still takes and gives back a turn, so its cost is
      // in every row), with a points budget the bench's upstream can take: GitHub's 800 a minute per
      // credential would hold a one-token hot key to 13 calls a second and make the row measure waits.
      MIRROR_UPSTREAM_GOVERNOR_POINTS_PER_MINUTE: '100000000',
    };
    for (const pair of overrides) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
    const { loadConfig } = await import('../src/app/config/index.js');
    const { Mirror } = await import('../src/app/mirror.js');
    const mirror = new Mirror(loadConfig({ env, args: [] }));
    url = await mirror.start();
    close = () => mirror.stop();
  } else {
    throw new Error(`unknown server kind ${kind}`);
  }
  const gc = new GcLedger();
  process.on('message', (message: { type?: string }) => {
    if (message.type !== 'usage') return;
    const cpu = process.cpuUsage();
    const { allocatedBytes, gcUs } = gc.read();
    const usage: Usage = { type: 'usage', cpuUs: cpu.user + cpu.system, systemUs: cpu.system, rssBytes: process.memoryUsage.rss(), maxRssBytes: process.resourceUsage().maxRSS * 1024, allocatedBytes, gcUs };
    if (counts !== undefined) Object.assign(usage, counts());
    process.send?.(usage);
  });
  process.send?.({ type: 'ready', url });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench server failed: ${String(error)}\n`);
  process.exit(1);
});
