/**
 * Credential isolation, property-based (fast-check): random tokens × resources × interleavings through
 * two replicas that share one cache, with resources changing in between. An upstream that answers
 * every credential with a body naming that credential shows any leak: zero answers may carry another
 * credential's data (or another resource's).
 *
 * The replicas share one real Redis (cache.backend = redis), as in production: entries written by
 * one replica are read, sealed with each credential's key, by the other.
 */
import test from 'ava';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { startMirror } from '../support/mirror-harness.js';
import { startRedis, type RedisProcess } from '../support/redis-harness.js';
import type { Mirror } from '../../src/app/mirror.js';

const TOKENS = ['token alpha', 'token bravo', 'Bearer charlie', 'token delta', undefined] as const;
const PATHS = ['/repos/o/a', '/repos/o/b', '/repos/o/a/issues', '/user', '/orgs/x'] as const;
const RUNS = 60;

let upstream: Server;
let upstreamCalls = 0;
const versions = new Map<string, number>();
let replicas: Mirror[] = [];
let pools: Pool[] = [];
let redis: RedisProcess;

/** The body an upstream gives `credential` for `path` at `version`: it names both. */
function bodyFor(credential: string, path: string, version: number): string {
  return JSON.stringify({ owner: credential, path, version, padding: 'x'.repeat(64) });
}

test.before(async () => {
  upstream = createServer((req, res) => {
    upstreamCalls++;
    const credential = req.headers.authorization ?? 'anonymous';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const version = versions.get(path) ?? 0;
    const body = bodyFor(credential, path, version);
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', etag, 'cache-control': 'private, max-age=60' }).end(body);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  redis = await startRedis();
  const env = { MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url };
  replicas = await Promise.all([startMirror(url, env), startMirror(url, env)]);
  pools = replicas.map((replica) => new Pool(replica.url, { connections: 8 }));
});

test.after.always(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
  await Promise.all(replicas.map((replica) => replica.stop()));
  await new Promise((resolve) => upstream?.close(resolve));
  await redis?.stop();
});

type Step = { kind: 'get'; token: number; path: number; replica: number } | { kind: 'change'; path: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('get' as const), token: fc.nat(TOKENS.length - 1), path: fc.nat(PATHS.length - 1), replica: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('change' as const), path: fc.nat(PATHS.length - 1) }) },
);

test('no answer ever carries another credential’s data, across two replicas sharing a cache', async (t) => {
  let answers = 0;
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(stepArb, { minLength: 1, maxLength: 8 }), { minLength: 3, maxLength: 8 }), async (groups) => {
      // Steps within a group run concurrently (coalescing, racing stores); groups run one after the other.
      for (const group of groups) {
        const results = await Promise.all(
          group.map(async (step) => {
            if (step.kind === 'change') {
              const path = PATHS[step.path] as string;
              versions.set(path, (versions.get(path) ?? 0) + 1);
              return undefined;
            }
            const token = TOKENS[step.token];
            const path = PATHS[step.path] as string;
            const response = await (pools[step.replica] as Pool).request({
              method: 'GET',
              path,
              headers: token === undefined ? {} : { authorization: token },
            });
            const text = await response.body.text();
            return { token, path, status: response.statusCode, outcome: String(response.headers['x-cache']), text };
          }),
        );
        for (const result of results) {
          if (result === undefined) continue;
          answers++;
          outcomes.set(result.outcome, (outcomes.get(result.outcome) ?? 0) + 1);
          if (result.status !== 200) throw new Error(`status ${result.status} for ${result.path}`);
          const body = JSON.parse(result.text) as { owner: string; path: string };
          const expected = result.token ?? 'anonymous';
          if (body.owner !== expected || body.path !== result.path) {
            throw new Error(`${expected} asked ${result.path} and got ${body.owner}'s ${body.path} (${result.outcome})`);
          }
        }
      }
    }),
    { numRuns: RUNS },
  );
  const message = `isolation: ${answers} answers through 2 replicas, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}, ${upstreamCalls} upstream calls`;
  t.log(message);
  t.true((outcomes.get('ONLINE_HIT') ?? 0) > 0, 'entries were shared and revalidated');
  t.true((outcomes.get('ONLINE_MISS') ?? 0) > 0);
});
