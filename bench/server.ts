/**
 * One server of the benchmark in its own process, so the load generator does not share its event loop:
 *   tsx bench/server.ts upstream | proxy <upstreamUrl> | mirror <upstreamUrl> [backend] [redisUrl]
 * Prints {"url": ...} on stdout once listening; exits on SIGTERM.
 */
import { FakeGitHub } from '../test/support/fake-github.js';
import { startBareProxy } from './bare-proxy.js';
import { loadConfig } from '../src/app/config/index.js';
import { Mirror } from '../src/app/mirror.js';
import { BENCH_RESOURCE, BENCH_BODY } from './scenario.js';

async function main(): Promise<void> {
  const [kind, upstreamUrl = '', backend = 'memory', redisUrl = ''] = process.argv.slice(2);
  let close: () => Promise<void>;
  let url: string;
  if (kind === 'upstream') {
    const github = await FakeGitHub.start({ quota: Number.MAX_SAFE_INTEGER, anonymousQuota: Number.MAX_SAFE_INTEGER, recordCalls: false });
    // URLs in the body point at this upstream, so the mirror does its real rewriting work.
    github.setResource(BENCH_RESOURCE, { body: JSON.parse(JSON.stringify(BENCH_BODY).replaceAll('https://api.github.com', github.url)) as unknown });
    url = github.url;
    close = () => github.close();
  } else if (kind === 'proxy') {
    const proxy = await startBareProxy(upstreamUrl);
    url = proxy.url;
    close = proxy.close;
  } else if (kind === 'mirror') {
    const config = loadConfig({
      env: {
        NODE_ENV: 'test',
        MIRROR_UPSTREAM_URL: upstreamUrl,
        MIRROR_CACHE_BACKEND: backend,
        MIRROR_REDIS_URL: redisUrl || 'redis://127.0.0.1:1',
        MIRROR_CACHE_SECRET: 'bench',
        MIRROR_LOG_LEVEL: 'warn',
      },
      args: [],
    });
    const mirror = new Mirror(config);
    url = await mirror.start();
    close = () => mirror.stop();
  } else {
    throw new Error(`unknown server kind ${kind}`);
  }
  process.stdout.write(JSON.stringify({ url }) + '\n');
  const stop = () => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench server failed: ${String(error)}\n`);
  process.exit(1);
});
