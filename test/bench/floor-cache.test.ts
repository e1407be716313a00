/**
 * The bench's floor cache (bench/floor-cache.ts), the yardstick of issue 13: it revalidates every
 * request (a 304 replays the stored 200), and with a freshness window (`floor-cache-fresh`) it
 * replays without asking upstream. A floor that asked upstream less, or more, would skew every ratio.
 */
import test from 'ava';
import { startBenchUpstream, type BenchUpstream } from '../../bench/upstream.js';
import { startFloorCache } from '../../bench/floor-cache.js';
import { BENCH_ACCEPT, BENCH_RESOURCE } from '../../bench/scenario.js';

const closers: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const close of closers.reverse()) await close();
});

async function upstream(): Promise<BenchUpstream> {
  const started = await startBenchUpstream();
  closers.push(() => started.close());
  return started;
}

async function floor(upstreamUrl: string, freshMs: number): Promise<string> {
  const started = await startFloorCache(upstreamUrl, 0, freshMs);
  closers.push(() => started.close());
  return started.url;
}

const get = async (url: string, authorization: string) => {
  const answer = await fetch(url + BENCH_RESOURCE, { headers: { accept: BENCH_ACCEPT, authorization } });
  return { status: answer.status, etag: answer.headers.get('etag'), body: await answer.text() };
};

test('the floor revalidates every request: one upstream call each, the later ones 304s replayed as the stored 200', async (t) => {
  const github = await upstream();
  const url = await floor(github.url, 0);
  const first = await get(url, 'token floor-a');
  const second = await get(url, 'token floor-a');
  const third = await get(url, 'token floor-a');
  t.is(first.status, 200);
  t.deepEqual(second, first);
  t.deepEqual(third, first);
  t.deepEqual(github.counts(), { requests: 3, notModified: 2 });
});

test('with a freshness window the floor replays its stored 200 without asking upstream, per token', async (t) => {
  const github = await upstream();
  const url = await floor(github.url, 60_000);
  const first = await get(url, 'token floor-b');
  t.deepEqual(await get(url, 'token floor-b'), first);
  t.deepEqual(await get(url, 'token floor-b'), first);
  t.deepEqual(github.counts(), { requests: 1, notModified: 0 });
  // another token is another entry: its first request goes upstream
  t.is((await get(url, 'token floor-c')).status, 200);
  t.deepEqual(github.counts(), { requests: 2, notModified: 0 });
});

test('a 304 starts the freshness window again: after it the floor replays without asking upstream', async (t) => {
  const github = await upstream();
  const url = await floor(github.url, 1_000);
  const first = await get(url, 'token floor-d');
  await new Promise((resolve) => setTimeout(resolve, 1_100)); // the first window has passed
  t.deepEqual(await get(url, 'token floor-d'), first);
  t.deepEqual(github.counts(), { requests: 2, notModified: 1 });
  t.deepEqual(await get(url, 'token floor-d'), first);
  t.deepEqual(await get(url, 'token floor-d'), first);
  t.deepEqual(github.counts(), { requests: 2, notModified: 1 });
});
