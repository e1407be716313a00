/**
 * `npm run bench:storage` (issue 16): what 100 tokens × 200 resources of about 4 KB cost in storage,
 * with bodies shared across credentials (cache.shareAcrossCredentials, the default) and without.
 *
 * For each setting and each backend, a real mirror (in this process) in front of the fake GitHub;
 * every token reads every resource once (tokens one after the other, a token's reads concurrently),
 * then the figures are read: the memory cache's bytes (github_mirror_cache_size) and its entries and
 * bodies (/readyz), Redis' used_memory, used_memory_dataset, DBSIZE and the bodies it holds (SCAN).
 * Quota spent is printed too (sharing: one unit per resource; per credential: one per token and
 * resource). Writes bench/results/storage.json.
 *
 *   npm run bench:storage -- --tokens 100 --resources 200 --body-bytes 4096 --backends memory,redis
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { FakeGitHub } from '../test/support/fake-github.js';
import { startMirror } from '../test/support/mirror-harness.js';
import { startRedis } from '../test/support/redis-harness.js';
import type { Mirror } from '../src/app/mirror.js';
import { Redis } from 'ioredis';
import { prng } from './simulate-lib.js';

interface Options {
  backends: Array<'memory' | 'redis'>;
  tokens: number;
  resources: number;
  bodyBytes: number;
  concurrency: number;
  out: string;
}

interface Row {
  backend: 'memory' | 'redis';
  share_across_credentials: boolean;
  tokens: number;
  resources: number;
  body_bytes: number;
  requests: number;
  quota_spent: number;
  /** Credentials' entries and stored bodies (memory: exact; Redis: counted by SCAN). */
  entries: number | null;
  bodies: number | null;
  /** github_mirror_cache_size: the memory cache's bytes, or Redis' used_memory_dataset. */
  cache_size_bytes: number | null;
  redis_used_memory_bytes: number | null;
  redis_used_memory_dataset_bytes: number | null;
  redis_keys: number | null;
  duration_ms: number;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { backends: ['memory', 'redis'], tokens: 100, resources: 200, bodyBytes: 4096, concurrency: 32, out: 'bench/results/storage.json' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = argv[++i];
    if (value === undefined) throw new RangeError(`${arg}: a value is needed`);
    if (arg === '--backends') o.backends = value.split(',').map((b) => (b === 'redis' ? 'redis' : 'memory'));
    else if (arg === '--tokens') o.tokens = Number(value);
    else if (arg === '--resources') o.resources = Number(value);
    else if (arg === '--body-bytes') o.bodyBytes = Number(value);
    else if (arg === '--concurrency') o.concurrency = Number(value);
    else if (arg === '--out') o.out = value;
    else throw new RangeError(`unknown option ${arg}`);
  }
  for (const [name, n] of Object.entries({ tokens: o.tokens, resources: o.resources, bodyBytes: o.bodyBytes, concurrency: o.concurrency })) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name}: a positive integer`);
  }
  return o;
}

const WORDS = ['mirror', 'cache', 'token', 'github', 'repository', 'release', 'branch', 'commit', 'review', 'workflow', 'action', 'runner', 'label', 'milestone', 'issue', 'pull'];

/** A repository-shaped JSON body of about `bytes` bytes, different for every resource, compressible like real JSON. */
function body(k: number, bytes: number): unknown {
  const random = prng(1000 + k);
  const words = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
  const full = `bench-org/repo-${k}`;
  const out: Record<string, unknown> = {
    id: 900000 + k,
    node_id: `R_kgDO${(900000 + k).toString(36)}`,
    full_name: full,
    private: false,
    html_url: `https://github.com/${full}`,
    url: `https://api.github.com/repos/${full}`,
    default_branch: 'main',
    stargazers_count: Math.floor(random() * 5000),
    topics: Array.from({ length: 8 }, () => words(1)),
  };
  let i = 0;
  while (JSON.stringify(out).length < bytes) out[`field_${i++}`] = `${words(6)} ${Math.floor(random() * 1e9).toString(36)}`;
  return out;
}

const tokenOf = (i: number): string => `token ghs_storagebench${String(i).padStart(4, '0')}${'x'.repeat(20)}`;
const pathOf = (k: number): string => `/repos/bench-org/repo-${k}`;

async function readAll(mirror: Mirror, o: Options, agent: Agent): Promise<number> {
  let requests = 0;
  for (let t = 0; t < o.tokens; t++) {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < o.resources) {
        const k = next++;
        const response = await request(`${mirror.url}${pathOf(k)}`, { headers: { authorization: tokenOf(t), accept: 'application/vnd.github+json' }, dispatcher: agent });
        await response.body.dump({ limit: Number.MAX_SAFE_INTEGER });
        if (response.statusCode !== 200) throw new Error(`GET ${pathOf(k)}: ${response.statusCode}`);
        requests += 1;
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  }
  return requests;
}

/** Keys matching `pattern` (SCAN: redis-cli's output would not fit a child process buffer). */
async function countKeys(url: string, pattern: string): Promise<number> {
  const client = new Redis(url);
  try {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
  } finally {
    client.disconnect();
  }
}

async function gauge(mirror: Mirror, name: string): Promise<number | null> {
  const text = (await (await request(`${mirror.url}/metrics`)).body.text()).toString();
  const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)`, 'm').exec(text);
  return match === null ? null : Number(match[1]);
}

async function run(o: Options, backend: 'memory' | 'redis', share: boolean): Promise<Row> {
  const github = await FakeGitHub.start({ recordCalls: false, quota: 1_000_000 });
  const redis = backend === 'redis' ? await startRedis() : undefined;
  const agent = new Agent({ connections: o.concurrency });
  let mirror: Mirror | undefined;
  try {
    for (let k = 0; k < o.resources; k++) github.setResource(pathOf(k), { body: body(k, o.bodyBytes) });
    mirror = await startMirror(github.url, {
      MIRROR_LOG_LEVEL: 'silent',
      MIRROR_CACHE_BACKEND: backend,
      MIRROR_CACHE_MEMORY_MAX_BYTES: String(1024 * 1024 * 1024),
      MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: String(share),
      MIRROR_SNAPSHOT_STORE: 'none',
      ...(redis === undefined ? {} : { MIRROR_REDIS_URL: redis.url }),
    });
    const started = performance.now();
    const requests = await readAll(mirror, o, agent);
    const duration = performance.now() - started;
    const size = await gauge(mirror, 'github_mirror_cache_size');
    const row: Row = {
      backend,
      share_across_credentials: share,
      tokens: o.tokens,
      resources: o.resources,
      body_bytes: o.bodyBytes,
      requests,
      quota_spent: github.totalQuotaSpent(),
      entries: null,
      bodies: null,
      cache_size_bytes: size,
      redis_used_memory_bytes: null,
      redis_used_memory_dataset_bytes: null,
      redis_keys: null,
      duration_ms: Math.round(duration),
    };
    if (redis === undefined) {
      const storage = JSON.parse((await (await request(`${mirror.url}/readyz`)).body.text()).toString()).storage as { entries?: number; bodies?: number };
      row.entries = storage.entries ?? (await gauge(mirror, 'github_mirror_cached_objects'));
      row.bodies = storage.bodies ?? 0;
    } else {
      const info = await redis.cli('INFO', 'memory');
      row.redis_used_memory_bytes = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
      row.redis_used_memory_dataset_bytes = Number(/^used_memory_dataset:(\d+)/m.exec(info)?.[1]);
      row.redis_keys = Number(await redis.cli('DBSIZE'));
      const count = (pattern: string) => countKeys(redis.url, pattern);
      row.bodies = await count('ghm:{*}b:*');
      row.entries = share ? await count('ghm:{*}e:*') : row.redis_keys - (await count('ghm:__*'));
    }
    return row;
  } finally {
    await mirror?.stop();
    await agent.close();
    await redis?.stop();
    await github.close();
  }
}

const mib = (bytes: number | null): string => (bytes === null ? '' : (bytes / (1024 * 1024)).toFixed(1));

function table(rows: readonly Row[]): string {
  const header = ['backend', 'shared bodies', 'tokens × resources', 'quota spent', 'entries', 'bodies', 'cache size MiB', 'Redis used_memory MiB', 'Redis dataset MiB', 'Redis keys'];
  const lines = rows.map((r) => [
    r.backend,
    r.share_across_credentials ? 'yes' : 'no',
    `${r.tokens} × ${r.resources}`,
    String(r.quota_spent),
    String(r.entries ?? ''),
    String(r.bodies ?? ''),
    mib(r.cache_size_bytes),
    mib(r.redis_used_memory_bytes),
    mib(r.redis_used_memory_dataset_bytes),
    String(r.redis_keys ?? ''),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: string[]): string => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [format(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(format)].join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  for (const backend of o.backends) {
    for (const share of [true, false]) {
      process.stderr.write(`storage: ${backend}, shared bodies ${share ? 'on' : 'off'}: ${o.tokens} tokens × ${o.resources} resources of ~${o.bodyBytes} bytes…\n`);
      const row = await run(o, backend, share);
      process.stderr.write(`  ${row.requests} requests in ${(row.duration_ms / 1000).toFixed(1)} s, quota ${row.quota_spent}, ${row.entries} entries, ${row.bodies} bodies\n`);
      rows.push(row);
    }
  }
  process.stdout.write(`${table(rows)}\n`);
  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(rows, null, 2)}\n`);
  process.stderr.write(`storage: wrote ${o.out}\n`);
}

// exit (rather than die) on Ctrl-C, so the exit hook of the Redis harness kills the redis-server it started
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

main().catch((error: unknown) => {
  process.stderr.write(`bench:storage failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
