/**
 * Issue 14, item 6: requests still in flight when server.shutdownGraceMs runs out are cut; the real
 * entry point says which (one error line with their method and path, no stack) and exits 3, not 0.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeGitHub } from '../support/fake-github.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'src', 'app', 'main.ts');

let github: FakeGitHub;

test.before(async () => {
  github = await FakeGitHub.start();
  github.injectFault('/repos/o/never', { kind: 'hang' });
});

test.after.always(async () => {
  await github?.close();
});

test('a request cut by a short shutdown grace period: logged with its path, exit code 3', async (t) => {
  t.timeout(40_000);
  let clientGot: string | undefined;
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      MIRROR_PORT: '0',
      MIRROR_LOG_LEVEL: 'info',
      MIRROR_UPSTREAM_URL: github.url,
      MIRROR_UPSTREAM_TIMEOUT_MS: '20000',
      MIRROR_SHUTDOWN_GRACE_MS: '300',
      MIRROR_SNAPSHOT_STORE: 'none',
    },
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  child.stdout.on('data', (data: Buffer) => {
    const text = data.toString();
    stdout += text;
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as { msg?: string; address?: string };
      if (parsed.msg !== 'github-mirror listening' || parsed.address === undefined) continue;
      const address = parsed.address;
      void (async () => {
        const pending = fetch(`${address}/repos/o/never`).then(
          (response) => `status ${response.status}`,
          (error: unknown) => `error ${String(error)}`,
        );
        for (let i = 0; i < 200 && !github.calls.some((c) => c.target === '/repos/o/never'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
        child.kill('SIGTERM');
        clientGot = await pending;
      })();
    }
  });
  let stderr = '';
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(killer);

  t.is(code, 3, stderr);
  const lines = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const cut = lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('shutdown grace period over'));
  t.like(cut, { level: 50, msg: 'shutdown grace period over: cutting 1 request(s) still in flight', cut: 1 });
  t.like((cut?.requests as unknown[] | undefined)?.[0], { method: 'GET', path: '/repos/o/never' });
  t.false(stdout.includes('ClientDestroyedError'), 'no ClientDestroyedError stack for an expected cut');
  t.truthy(lines.find((line) => line.msg === 'github-mirror stopped'));
  t.truthy(clientGot, 'the cut request was answered or broken off');
});
