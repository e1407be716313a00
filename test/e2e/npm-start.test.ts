/**
 * `npm start` under a supervisor: the signal a supervisor (or `docker compose` with `command: npm
 * start`) sends goes to the npm process only. The mirror must get it, drain and stop — not be left
 * orphaned and serving. Also SIGHUP: a graceful stop, like SIGTERM.
 *
 * Runs the real `npm start` in a copy of the project (its own dist/, built by start.mjs), so the
 * repository's dist/ is never raced by another test.
 */
import test from 'ava';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { freePort } from '../support/redis-harness.js';
import { ROOT } from '../deploy/manifests.js';

const children = new Set<ChildProcess>();
const pids = new Set<number>();
let work: string | undefined;
let github: FakeGitHub | undefined;

test.before(() => {
  work = mkdtempSync(join(tmpdir(), 'ghm-npm-start-'));
  for (const path of ['package.json', 'scripts', 'src', 'config', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(join(ROOT, path), join(work, path), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
});

test.after.always(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone: what the tests want
    }
  }
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await github?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts `npm start` in the copy; resolves once /healthz answers, with npm's pid and the mirror's. */
async function npmStart(port: number): Promise<{ npm: ChildProcess; mirrorPid: number; output: () => string; closed: Promise<void> }> {
  github ??= await FakeGitHub.start();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    NODE_ENV: 'development',
    MIRROR_PORT: String(port),
    MIRROR_HOST: '127.0.0.1',
    MIRROR_UPSTREAM_URL: github.url,
    MIRROR_SNAPSHOT_STORE: 'none',
    MIRROR_SHUTDOWN_GRACE_MS: '3000',
  };
  const npm = spawn('npm', ['start'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(npm);
  // 'close' comes once npm exited AND its output was read to the end: the mirror writes its buffered
  // log lines as it exits, so a check made at 'exit' (or when the pid is gone) can miss them
  const closed = new Promise<void>((resolve) => npm.once('close', () => resolve()));
  let output = '';
  npm.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await until(
    '/healthz',
    async () => {
      if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}:\n${output}`);
      return (await portOpen(port)) && (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false));
    },
    240_000,
  );
  const mirrorPid = Number(execFileSync('pgrep', ['-P', String(npm.pid)]).toString().trim().split('\n')[0]);
  pids.add(mirrorPid);
  return { npm, mirrorPid, output: () => output, closed };
}

test.serial('SIGTERM to the npm process only: the mirror drains and its port closes within the grace period', async (t) => {
  t.timeout(300_000);
  const port = await freePort();
  const { npm, mirrorPid, output, closed } = await npmStart(port);
  t.not(mirrorPid, npm.pid);
  t.true(alive(mirrorPid));
  process.kill(npm.pid as number, 'SIGTERM');
  // the grace period is 3 s; allow the process exit on top of it
  await until('the port to close', async () => !(await portOpen(port)), 8000);
  await until('the mirror process to exit', () => !alive(mirrorPid), 8000);
  t.false(await portOpen(port));
  t.false(alive(mirrorPid), 'no orphaned mirror left serving');
  await closed;
  t.regex(output(), /"signal":"SIGTERM".*shutting down|shutting down.*"signal":"SIGTERM"/);
  t.regex(output(), /github-mirror stopped/);
});

test.serial('SIGHUP to the mirror: a graceful stop (drain, exit 0), as documented', async (t) => {
  t.timeout(300_000);
  const port = await freePort();
  const { npm, mirrorPid, output, closed } = await npmStart(port);
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  process.kill(mirrorPid, 'SIGHUP');
  t.is(await exited, 0);
  await until('the mirror process to exit', () => !alive(mirrorPid), 8000);
  t.false(await portOpen(port));
  await closed;
  t.regex(output(), /"signal":"SIGHUP"/);
  t.regex(output(), /github-mirror stopped/);
});
