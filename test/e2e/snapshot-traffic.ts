/**
 * Traffic for the snapshot end-to-end tests: N resources on the fake GitHub, read by T tokens through
 * a mirror with bounded concurrency, counting X-Cache outcomes; and a log capture for the mirror.
 */
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import type { FakeGitHub } from '../support/fake-github.js';
import { createLogger } from '../../src/app/logger.js';

/**
 * cache.shareAcrossCredentials off: the snapshot scenarios count entries per credential (one per token
 * and resource) and some bring their own RedisCache in that layout; snapshot-shared.test.ts covers
 * snapshots of the shared layout.
 */
export const PER_CREDENTIAL_LAYOUT = { MIRROR_CACHE_SHARE_ACROSS_CREDENTIALS: 'false' } as const;

export const TOKENS = ['token snap0aaaa1111', 'token snap1bbbb2222', 'token snap2cccc3333', 'token snap3dddd4444', 'token snap4eeee5555'];

export function resourcePaths(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `/repos/snap-org/repo-${i}`);
}

export function setResources(github: FakeGitHub, paths: string[]): void {
  paths.forEach((path, i) => github.setResource(path, { body: { id: i, full_name: path.slice(7), description: `resource ${i} `.repeat(20), stargazers_count: i * 3 } }));
}

export interface Replay {
  outcomes: Map<string, number>;
  requests: number;
  errors: number;
  hitRatio: number;
}

/** Every (token, path) pair once, `concurrency` at a time, over one keep-alive pool. */
export async function replay(mirrorUrl: string, paths: string[], tokens: string[] = TOKENS, concurrency = 64): Promise<Replay> {
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  const jobs: Array<[string, string]> = [];
  for (const token of tokens) for (const path of paths) jobs.push([token, path]);
  const outcomes = new Map<string, number>();
  let errors = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const [token, path] = jobs[next++]!;
      const response = await request(`${mirrorUrl}${path}`, { headers: { authorization: token }, dispatcher: agent });
      await response.body.arrayBuffer();
      if (response.statusCode !== 200) errors += 1;
      const outcome = String(response.headers['x-cache'] ?? 'NONE');
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await agent.close();
  }
  return { outcomes, requests: jobs.length, errors, hitRatio: (outcomes.get('ONLINE_HIT') ?? 0) / jobs.length };
}

/** A mirror logger whose JSON lines are kept for assertions. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  return { logger: createLogger(level, stream), lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
