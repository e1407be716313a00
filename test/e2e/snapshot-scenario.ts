/**
 * The restart scenario of issue 4, shared by the directory and S3 end-to-end tests: warm every
 * (token, resource) pair, snapshot, change a few resources upstream, restart, replay.
 */
import type { ExecutionContext } from 'ava';
import type { FakeGitHub } from '../support/fake-github.js';
import type { Mirror } from '../../src/app/mirror.js';
import { replay, TOKENS } from './snapshot-traffic.js';

export interface ScenarioOptions {
  github: FakeGitHub;
  paths: string[];
  /** Starts a mirror (the same configuration each time); the test closes it. */
  start: () => Promise<Mirror>;
  /** Between the stop and the second start (flush Redis). */
  betweenRestarts?: () => Promise<void>;
  /** Resources changed upstream after the snapshot: they alone should cost quota. Default 5. */
  changed?: number;
}

export interface ScenarioReport {
  restored: number;
  snapshotsBeforeStop: number;
  snapshotsAfterStop: number;
}

export async function restartScenario(t: ExecutionContext, o: ScenarioOptions): Promise<ScenarioReport> {
  const { github, paths } = o;
  const changed = o.changed ?? 5;
  github.resetCalls();
  const first = await o.start();
  t.truthy(first.snapshots, 'snapshots are on');

  const clock = (): number => performance.now();
  let mark = clock();
  const lap = (what: string): void => {
    const now = clock();
    t.log(`${what}: ${Math.round(now - mark)} ms`);
    mark = now;
  };
  const warm = await replay(first.url, paths);
  lap('warm-up');
  t.is(warm.errors, 0);
  t.is(warm.outcomes.get('ONLINE_MISS'), paths.length * TOKENS.length, 'the warm-up fetched everything');
  const warmQuota = github.totalQuotaSpent();
  t.is(warmQuota, paths.length * TOKENS.length);

  const taken = await first.snapshots!.snapshotNow();
  lap('snapshot');
  t.is(taken?.outcome, 'ok');
  if (taken?.outcome === 'ok') t.is(taken.info.entries, paths.length * TOKENS.length);

  const edition = Math.random();
  for (let i = 0; i < changed; i++) github.updateResource(paths[i]!, { id: i, changed: edition });
  const snapshotsBeforeStop = (await first.snapshots!.store.list()).length;
  await first.stop();
  const snapshotsAfterStop = (await first.snapshots!.store.list()).length;
  await o.betweenRestarts?.();

  github.resetCalls();
  mark = clock();
  const second = await o.start();
  lap('restart with restore');
  const ready = second.readiness();
  t.true(ready.ready, 'ready once the restore is done');
  const restore = (ready.snapshot as { restore?: { restored: number } } | undefined)?.restore;
  t.like(ready.restore, { state: 'ok' });

  const after = await replay(second.url, paths);
  lap('replay');
  const hits = after.outcomes.get('ONLINE_HIT') ?? 0;
  const quota = github.totalQuotaSpent();
  t.log(
    `warm-up: ${warm.requests} requests, ${warmQuota} quota units; after restart: ${hits} ONLINE_HIT (${(after.hitRatio * 100).toFixed(2)} %), ` +
      `${quota} quota units (${((quota / warmQuota) * 100).toFixed(2)} % of the warm-up), ${JSON.stringify(Object.fromEntries(after.outcomes))}`,
  );
  t.is(after.errors, 0);
  t.true(after.hitRatio >= 0.99, `hit ratio ${after.hitRatio}`);
  t.true(quota <= warmQuota * 0.01, `quota after restart ${quota} vs warm-up ${warmQuota}`);
  t.is(after.outcomes.get('ONLINE_MISS'), changed * TOKENS.length, 'exactly the changed resources were fetched again');
  await second.stop();
  return { restored: restore?.restored ?? 0, snapshotsBeforeStop, snapshotsAfterStop };
}
