/**
 * Sentinel and Cluster through RedisCache + BreakerCache, with failovers: zero failed operations.
 */
import test from 'ava';
import { BreakerCache, type BreakerCacheOptions } from '../../src/adapters/cache/breaker/breaker-cache.adapter.js';
import { MemoryCache } from '../../src/adapters/cache/memory/memory-cache.adapter.js';
import { RedisCache, type RedisCacheOptions } from '../../src/adapters/cache/redis/redis-cache.adapter.js';
import { during, loggingBus, makeEntry, RecordingLogger, type RecordingBus } from '../support/cache-traffic.js';
import { parseClusterNodes, sleep, startCluster, startSentinelSet, waitFor } from '../support/redis-harness.js';

const BREAKER: BreakerCacheOptions = { timeoutMs: 300, errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 400 };

const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  // caches first (they quit their connections), then the servers
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function caches(options: RedisCacheOptions): { redis: RedisCache; cache: BreakerCache; bus: RecordingBus; logger: RecordingLogger } {
  const logger = new RecordingLogger();
  const bus = loggingBus(logger);
  const redis = new RedisCache({ ...options, events: bus });
  cleanups.push(() => redis.close());
  const cache = new BreakerCache(redis, new MemoryCache({ maxBytes: 50 * 1024 * 1024 }), { ...BREAKER, events: bus });
  cleanups.push(() => cache.close());
  return { redis, cache, bus, logger };
}

test('sentinel: the master is killed; after failover writes go to the new master; zero failed operations', async (t) => {
  const set = await startSentinelSet({ downAfterMs: 1000, failoverTimeoutMs: 3000 });
  cleanups.push(() => set.stop());
  const { redis, cache } = caches({
    sentinels: set.sentinelAddrs,
    sentinelName: set.name,
    keyPrefix: 'sen:',
    commandTimeoutMs: 200,
    maxReconnectDelayMs: 200,
  });
  await redis.start();
  t.true(redis.isReady());
  t.is(redis.topology, 'sentinel');
  await cache.store('before', makeEntry('before|x'), 60);
  t.is(await set.master.cli('EXISTS', 'sen:before'), '1');

  const report = await during(cache, { loops: 10, keyPrefix: 'sen' }, async () => {
    await sleep(200);
    set.master.kill('SIGKILL');
    await waitFor('sentinel failover', async () => (await set.currentMasterPort()) === set.replica.port, 20000, 100);
    await waitFor('breaker closed on the new master', () => cache.breakerState === 'closed' && redis.isReady(), 20000, 20);
    await sleep(300);
  });
  t.log(`${report.operations} operations, ${report.hits} hits, slowest ${report.maxLatencyMs.toFixed(0)} ms`);
  t.is(report.failed, 0, report.errors.join('; '));
  t.is(report.wrongBodies, 0);
  await cache.store('after', makeEntry('after|x'), 60);
  t.is(await set.replica.cli('EXISTS', 'sen:after'), '1', 'written to the promoted replica');
  t.truthy(await redis.lookup('before'), 'replicated data survived the failover');
  t.true(Number(await set.replica.cli('DBSIZE')) > 10);
});

test('cluster: entries land on all three masters; a master failover keeps working through the breaker', async (t) => {
  const cluster = await startCluster({ nodeTimeoutMs: 1000 });
  cleanups.push(() => cluster.stop());
  const { redis, cache } = caches({
    clusterNodes: cluster.startupNodes.slice(0, 2),
    keyPrefix: 'clu:',
    commandTimeoutMs: 200,
    maxReconnectDelayMs: 200,
  });
  await redis.start();
  t.true(redis.isReady());
  t.is(redis.topology, 'cluster');
  for (let i = 0; i < 60; i += 1) await cache.store(`spread:${i}`, makeEntry(`spread:${i}|x`), 60);
  const masters = await cluster.masterPorts();
  t.is(masters.length, 3);
  const byPort = new Map(cluster.nodes.map((n) => [n.port, n]));
  for (const port of masters) {
    t.true(Number(await byPort.get(port)!.cli('DBSIZE')) > 0, `master ${port} holds entries`);
  }
  const stats = await redis.stats();
  t.is(stats.entries, 60);

  const victim = byPort.get(masters[0]!)!;
  const replicaOfVictim = async (): Promise<number | undefined> => {
    const out = await victim.cli('CLUSTER', 'NODES');
    const myId = out.split('\n').find((l) => l.includes('myself'))?.split(' ')[0];
    const line = out.split('\n').find((l) => l.includes('slave') && myId !== undefined && l.includes(myId));
    return line === undefined ? undefined : Number(line.split(' ')[1]?.split('@')[0]?.split(':')[1]);
  };
  const heir = await replicaOfVictim();
  t.truthy(heir);

  const report = await during(cache, { loops: 10, keyPrefix: 'clu' }, async () => {
    await sleep(200);
    victim.kill('SIGKILL');
    await waitFor('replica promoted', async () => {
      const other = cluster.nodes.find((n) => n.alive && n.port !== heir)!;
      const { masters: now } = parseClusterNodes(await other.cli('CLUSTER', 'NODES'));
      return now.includes(heir!) && !now.includes(victim.port);
    }, 20000, 100);
    // every slot answers through Redis again, not only through the memory fallback
    await waitFor('all slots answer', async () => {
      for (let i = 0; i < 60; i += 1) await redis.lookup(`spread:${i}`);
      return true;
    }, 20000, 100);
    await waitFor('breaker closed', () => cache.breakerState === 'closed', 10000, 20);
    await sleep(300);
  });
  t.log(`${report.operations} operations, ${report.hits} hits, slowest ${report.maxLatencyMs.toFixed(0)} ms`);
  t.is(report.failed, 0, report.errors.join('; '));
  t.is(report.wrongBodies, 0);
  let found = 0;
  for (let i = 0; i < 60; i += 1) if ((await redis.lookup(`spread:${i}`)) !== undefined) found += 1;
  t.is(found, 60, 'entries of the failed master were served by its promoted replica');
  const before = Number(await byPort.get(heir!)!.cli('DBSIZE'));
  for (let i = 0; i < 60; i += 1) await cache.store(`again:${i}`, makeEntry(`again:${i}|x`), 60);
  t.true(Number(await byPort.get(heir!)!.cli('DBSIZE')) > before, 'the new master takes writes');
});
