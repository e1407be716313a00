/**
 * A small run of the scale simulation (bench/simulate-lib.ts, docs/scaling.md): 3 replicas, a real
 * Redis, 3 clients × 8 resources. Every quota figure is asserted exactly: each phase ends with every
 * client idle, changes happen between passes, and a client reads one resource at a time outside the
 * warm-up burst, so what GitHub charges follows from the scenario alone.
 *
 * Each runSimulation() starts and stops its own fake GitHub, Redis and replicas (in a finally).
 */
import test from 'ava';
import { formatTable, runSimulation, targetFor, type PhaseName, type PhaseRow, type SimulationOptions } from '../../bench/simulate-lib.js';

const C = 3;
const K = 8;
const R = 3;
const FANOUT = 3;
const STEADY_PASSES = 2;
const CHANGES = 2;
const RESTORE_CHANGES = 1;

const base: Omit<SimulationOptions, 'backend'> = {
  replicas: R,
  clients: C,
  resources: K,
  fanout: FANOUT,
  steadyPasses: STEADY_PASSES,
  changesPerStep: CHANGES,
  restoreChanges: RESTORE_CHANGES,
  outagePasses: 1,
  upstreamLatencyMs: 20,
  balancer: 'round-robin',
  seed: 11,
  // the quota figures below are per credential: each client's token pays for its own entries
  shareAcrossCredentials: false,
};

/** The phases of issue 7 (token-rotation, issue 16, has tests of its own below). */
const ISSUE_7_PHASES: PhaseName[] = ['warm-up', 'steady', 'rolling-restart', 'redis-restore', 'redis-down'];

function row(rows: PhaseRow[], phase: PhaseName): PhaseRow {
  const found = rows.find((r) => r.phase === phase);
  if (found === undefined) throw new Error(`no row for ${phase}`);
  return found;
}

test.serial('Redis, 3 replicas: one quota unit per resource per client to warm up, then only what changed; restore from a snapshot; Redis down', async (t) => {
  const rows = await runSimulation({ ...base, backend: 'redis', phases: ISSUE_7_PHASES });
  t.log(`\n${formatTable(rows)}`);
  t.deepEqual(
    rows.map((r) => r.phase),
    ['warm-up', 'steady', 'rolling-restart', 'redis-restore', 'redis-down'],
  );
  for (const r of rows) {
    t.is(r.rate_limited_clients, 0, `${r.phase}: no client rate limited`);
    t.is(r.errors, 0, `${r.phase}: no failed request`);
    if (r.phase !== 'redis-restore' && r.phase !== 'redis-down') t.is(r.breaker_opens, 0, `${r.phase}: the cache breaker stays closed`);
  }

  // (a) warm-up: each client reads each resource from 3 workers at once, one per replica
  const warm = row(rows, 'warm-up');
  t.is(warm.requests, C * K * FANOUT);
  if (warm.coalesce_wait_ms > 0) {
    // cross-replica coalescing: one replica per key calls GitHub, the two others wait for its entry
    t.is(
      warm.quota_spent,
      C * K,
      'more than one unit for a key: two replicas called GitHub for the same cold key (a waiter that took the ' +
        'flight lease over must look the entry up again before calling upstream)',
    );
    t.is(warm.quota_per_resource_client, 1);
    // a request either waited for another replica's entry or reached GitHub (a late one with a 304, free)
    t.is(warm.coalesced_across_replicas + warm.upstream_calls, warm.requests);
    t.true(warm.coalesced_across_replicas > 0);
  } else {
    // without it, every replica may miss the shared cache at the same moment
    t.true(warm.quota_spent >= C * K && warm.quota_spent <= C * K * FANOUT);
  }
  t.is(warm.redis_keys, C * K, 'one shared entry per client and resource');

  // (b) steady state: a changed resource costs each client one unit, an unchanged one nothing (304)
  const steady = row(rows, 'steady');
  t.is(steady.changed_resources, STEADY_PASSES * CHANGES);
  t.is(steady.quota_spent, STEADY_PASSES * CHANGES * C);
  t.is(steady.requests, STEADY_PASSES * C * K);
  t.is(steady.upstream_calls, steady.requests, 'every request revalidated once');

  // (c) rolling restart: the new replicas find everything in Redis; only the changes cost
  const rolling = row(rows, 'rolling-restart');
  t.is(rolling.changed_resources, CHANGES);
  t.is(rolling.quota_spent, CHANGES * C);
  t.true(rolling.requests >= C * K);

  // (d) Redis restarted empty, the snapshot restored: only what changed since the snapshot costs
  const restore = row(rows, 'redis-restore');
  t.is(restore.changed_resources, RESTORE_CHANGES);
  t.is(restore.quota_spent, RESTORE_CHANGES * C);
  t.is(restore.redis_keys, C * K, 'the restored entries (the changed ones were replaced in place)');

  // (e) Redis down: each replica's breaker moves it to its own (empty) memory cache; one pass misses everything once
  const down = row(rows, 'redis-down');
  t.true(down.breaker_opens >= R, 'every replica switched to memory');
  t.is(down.quota_spent, C * K);
  t.is(down.redis_keys, null);
});

test.serial('memory, 3 replicas: the warm-up burst costs one unit per replica it reaches', async (t) => {
  const rows = await runSimulation({ ...base, backend: 'memory', phases: ['warm-up'] });
  t.log(`\n${formatTable(rows)}`);
  const warm = row(rows, 'warm-up');
  // round-robin: the 3 simultaneous requests for one key land on the 3 replicas, each with its own cache
  t.is(warm.quota_spent, C * K * FANOUT);
  t.is(warm.quota_per_resource_client, FANOUT);
  t.is(warm.rate_limited_clients, 0);
  t.is(warm.coalesced_across_replicas, 0);
});

test.serial('a quota of 2 units per resource: every client is rate limited with memory, none with Redis', async (t) => {
  const quota = 2 * K;
  const memory = row(await runSimulation({ ...base, backend: 'memory', quota, phases: ['warm-up'] }), 'warm-up');
  t.is(memory.rate_limited_clients, C);
  t.is(memory.quota_spent, C * quota, 'each token spent its whole quota');
  t.is(memory.refused_upstream_calls, C * K * FANOUT - C * quota, 'the rest GitHub refused');

  const redis = row(await runSimulation({ ...base, backend: 'redis', quota, phases: ['warm-up'] }), 'warm-up');
  t.is(redis.rate_limited_clients, 0);
  t.is(redis.refused_upstream_calls, 0);
  t.true(redis.quota_spent <= C * quota);
});

test.serial('token rotation: with shared bodies new tokens cost nothing when nothing changed; per credential, one unit per resource', async (t) => {
  const phases: PhaseName[] = ['warm-up', 'steady', 'token-rotation'];
  const shared = await runSimulation({ ...base, backend: 'redis', shareAcrossCredentials: true, phases });
  const perCredential = await runSimulation({ ...base, backend: 'redis', shareAcrossCredentials: false, phases: ['warm-up', 'token-rotation'] });
  const memory = await runSimulation({ ...base, backend: 'memory', shareAcrossCredentials: true, phases: ['warm-up', 'token-rotation'] });
  t.log(`\n${formatTable([...shared, ...perCredential, ...memory])}`);
  const on = row(shared, 'token-rotation');
  t.is(on.requests, C * K);
  t.is(on.quota_spent, 0, 'every new token was revalidated against the stored bodies (free 304s)');
  t.is(on.quota_per_resource_client, 0);
  t.true(on.target_met === true);
  t.is(on.redis_bodies, K, 'one body per resource, whatever the number of tokens (an old version goes with its last entry)');
  t.is(on.errors, 0);
  // the shared warm-up: whichever client reads a resource first pays; the others revalidate for free
  t.true(row(shared, 'warm-up').quota_spent <= C * K);
  // a token with an entry of its own revalidates that entry: a change costs it one unit, as before
  t.is(row(shared, 'steady').quota_spent, STEADY_PASSES * CHANGES * C);
  const off = row(perCredential, 'token-rotation');
  t.is(off.quota_spent, C * K, 'per credential: every new token pays every resource again');
  t.is(off.quota_per_resource_client, 1);
  t.is(off.redis_bodies, 0);
  t.is(row(memory, 'token-rotation').quota_spent, 0, 'the memory backend too: every replica saw every key in the warm-up');
});

test('token rotation: no shared-bodies target for memory replicas a rolling restart replaced earlier in the run; Redis and per-credential keep theirs', (t) => {
  const rotation = { replicas: 10, phase: 'token-rotation' as const, quota_per_resource_client: 0.1, rate_limited_clients: 0, changed_resources: 0, resources: 60, share_across_credentials: true };
  t.deepEqual(targetFor({ ...rotation, backend: 'memory', after_restart: true }), { target: null, met: null });
  t.deepEqual(targetFor({ ...rotation, backend: 'memory', after_restart: false }), { target: '≤ 0.01 (shared bodies)', met: false });
  t.deepEqual(targetFor({ ...rotation, backend: 'redis', after_restart: true }), { target: '≤ 0.01 (shared bodies)', met: false });
  t.deepEqual(targetFor({ ...rotation, backend: 'memory', after_restart: true, share_across_credentials: false, quota_per_resource_client: 1 }), { target: '≈ 1 (per-credential)', met: true }, 'a new token pays once per resource per credential, restart or not');
});
