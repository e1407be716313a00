/**
 * What the Redis e2e files start before their tests: a fake GitHub, a real redis-server and mirrors on
 * it (cache backend Redis, plus the settings the file gives). `close()` stops the mirrors, then Redis,
 * then the fake GitHub — for `test.after.always`; a start that fails half-way closes what it started.
 */
import type { Mirror } from '../../src/app/mirror.js';
import { FakeGitHub } from './fake-github.js';
import { startMirror } from './mirror-harness.js';
import { startRedis, type RedisProcess } from './redis-harness.js';

export class RedisStack {
  private constructor(
    readonly github: FakeGitHub,
    readonly redis: RedisProcess,
    readonly mirrors: readonly Mirror[],
  ) {}

  /** `replicas` mirrors, each with MIRROR_CACHE_BACKEND=redis, MIRROR_REDIS_URL and `settings`. */
  static async start(settings: Record<string, string> = {}, replicas = 1): Promise<RedisStack> {
    const github = await FakeGitHub.start();
    let redis: RedisProcess | undefined;
    const mirrors: Mirror[] = [];
    try {
      redis = await startRedis();
      for (let i = 0; i < replicas; i++) {
        mirrors.push(await startMirror(github.url, { MIRROR_CACHE_BACKEND: 'redis', MIRROR_REDIS_URL: redis.url, ...settings }));
      }
      return new RedisStack(github, redis, mirrors);
    } catch (error) {
      await closeAll(mirrors, redis, github);
      throw error;
    }
  }

  /** The i-th mirror started. */
  mirror(i = 0): Mirror {
    const mirror = this.mirrors[i];
    if (mirror === undefined) throw new Error(`RedisStack: no mirror ${i} (${this.mirrors.length} started)`);
    return mirror;
  }

  close(): Promise<void> {
    return closeAll(this.mirrors, this.redis, this.github);
  }
}

async function closeAll(mirrors: readonly Mirror[], redis: RedisProcess | undefined, github: FakeGitHub): Promise<void> {
  for (const mirror of mirrors) await mirror.stop();
  await redis?.stop();
  await github.close();
}
