/**
 * Issue 14, item 1: request bodies dribbled in by many clients (no token needed) must not hold the
 * upstream connections that reads need. 160 uploads at a few bytes a second, then cached and uncached
 * GETs answer as they do without them; the uploads never reach GitHub before their body is complete
 * and are cut with 408 JSON at server.bodyTimeoutMs.
 */
import test from 'ava';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { FakeGitHub } from '../support/fake-github.js';
import { startMirror } from '../support/mirror-harness.js';
import { parseRaw } from '../support/raw-http.js';
import type { Mirror } from '../../src/app/mirror.js';

const UPLOADS = 160;
const SAMPLES = 10;
/** A GET with no answer by then counts as unanswered. */
const GET_CAP_MS = 4000;

let github: FakeGitHub;
let mirror: Mirror;
const sockets = new Set<Socket>();

test.before(async () => {
  github = await FakeGitHub.start();
  github.setResource('/repos/o/cached', { body: { cached: true } });
  for (let i = 0; i < 3 * SAMPLES; i++) github.setResource(`/repos/o/fresh-${i}`, { body: { fresh: i } });
  mirror = await startMirror(github.url, {
    MIRROR_BODY_TIMEOUT_MS: '8000',
    // long enough that the uploads are still dribbling while the GETs are sampled
    MIRROR_REQUEST_TIMEOUT_MS: '120000',
    MIRROR_UPSTREAM_TIMEOUT_MS: '3000',
    // the default pool size (128) is what 160 uploads exhaust without separate pools
    MIRROR_UPSTREAM_CONNECTIONS: '128',
  });
});

test.after.always(async () => {
  for (const socket of sockets) socket.destroy();
  await mirror?.stop();
  await github?.close();
});

interface Sample {
  ms: number | undefined;
  cache: string | null;
}

/** One GET through the mirror; ms undefined when no answer came within GET_CAP_MS. */
async function timedGet(path: string): Promise<Sample> {
  const started = performance.now();
  try {
    const response = await fetch(`${mirror.url}${path}`, { headers: { authorization: 'token reader' }, signal: AbortSignal.timeout(GET_CAP_MS) });
    await response.arrayBuffer();
    return { ms: performance.now() - started, cache: response.headers.get('x-cache') };
  } catch {
    return { ms: undefined, cache: null };
  }
}

/** Samples cached and uncached GETs, one after the other (fresh paths from `firstFresh`). */
async function sample(firstFresh: number): Promise<{ cached: Sample[]; uncached: Sample[] }> {
  const cached: Sample[] = [];
  const uncached: Sample[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    cached.push(await timedGet('/repos/o/cached'));
    uncached.push(await timedGet(`/repos/o/fresh-${firstFresh + i}`));
  }
  return { cached, uncached };
}

function median(samples: Sample[]): number {
  const values = samples.map((s) => s.ms ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] as number;
}

/** A POST announcing a 100 KB body, sent one byte every 250 ms; resolves with what the mirror answered. */
function dribbleUpload(connected: () => void): Promise<string> {
  const { hostname, port } = new URL(mirror.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    sockets.add(socket);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write('POST /repos/o/r/issues HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
      timer = setInterval(() => socket.write(' '), 250);
      connected();
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
      resolve(Buffer.concat(chunks).toString());
    });
  });
}

test.serial('160 dribbling uploads: cached and uncached GETs answer as fast as without them; the uploads get 408 before reaching GitHub', async (t) => {
  t.timeout(150_000);
  t.is((await timedGet('/repos/o/cached')).cache, 'ONLINE_MISS');
  await sample(SAMPLES); // warm-up, not counted
  const quiet = await sample(0);

  let open = 0;
  const answers: Array<Promise<string>> = [];
  const allConnected = new Promise<void>((resolve) => {
    for (let i = 0; i < UPLOADS; i++) {
      answers.push(
        dribbleUpload(() => {
          if (++open === UPLOADS) resolve();
        }),
      );
    }
  });
  await allConnected;
  // Give the mirror time to take every upload in (without separate pools and buffering, 128 of them
  // then hold every upstream connection; with them, none reaches GitHub and this waits the full time).
  for (let waited = 0; waited < 3000 && github.calls.filter((c) => c.method === 'POST').length < 128; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const loaded = await sample(2 * SAMPLES);
  t.is(sockets.size, UPLOADS, 'every upload was still dribbling while the GETs were sampled');
  const postsAtGitHub = github.calls.filter((c) => c.method === 'POST').length;
  t.log(`quiet:  cached median ${median(quiet.cached).toFixed(1)} ms, uncached median ${median(quiet.uncached).toFixed(1)} ms`);
  t.log(`loaded: cached median ${median(loaded.cached).toFixed(1)} ms, uncached median ${median(loaded.uncached).toFixed(1)} ms`);
  t.log(`loaded: unanswered within ${GET_CAP_MS} ms: ${[...loaded.cached, ...loaded.uncached].filter((s) => s.ms === undefined).length} of ${2 * SAMPLES}`);

  t.deepEqual(
    loaded.cached.map((s) => s.cache),
    Array<string>(SAMPLES).fill('ONLINE_HIT'),
    'every cached GET revalidated while the uploads dribble',
  );
  t.deepEqual(
    loaded.uncached.map((s) => s.cache),
    Array<string>(SAMPLES).fill('ONLINE_MISS'),
    'every uncached GET fetched while the uploads dribble',
  );
  t.is(postsAtGitHub, 0, 'no incomplete upload took an upstream connection');
  // Ratios, not wall-clock: with the uploads the medians stay within a small factor of the quiet ones.
  t.true(median(loaded.cached) <= 5 * Math.max(median(quiet.cached), 1), 'cached GETs as fast as without the uploads');
  t.true(median(loaded.uncached) <= 5 * Math.max(median(quiet.uncached), 1), 'uncached GETs as fast as without the uploads');

  const settled = await Promise.all(answers);
  const statuses = settled.map((answer) => parseRaw(answer).status);
  t.deepEqual(statuses, Array<number>(UPLOADS).fill(408), 'every slow upload is cut at server.bodyTimeoutMs');
  t.like(JSON.parse(parseRaw(settled[0] as string).body), { code: 'REQUEST_TIMEOUT' });
  t.is(github.calls.filter((c) => c.method === 'POST').length, 0, 'a cut upload never reaches GitHub');
});
