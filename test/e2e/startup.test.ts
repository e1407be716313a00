/**
 * The real entry point as a process: bad configuration exits non-zero naming every bad key;
 * a good one starts, answers /healthz and stops gracefully on SIGTERM.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'src', 'app', 'main.ts');

function run(env: Record<string, string>, args: string[] = [], onLine?: (line: string, kill: (s: NodeJS.Signals) => void) => void) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const line of d.toString().split('\n')) if (line) onLine?.(line, (s) => child.kill(s));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('bad configuration: non-zero exit and one message naming every bad key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ghm-config-'));
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ cache: { nonsense: true } }));
  const result = await run({ MIRROR_CACHE_BACKEND: 'mongo', MIRROR_PORT: '99999' }, ['--config', file]);
  t.not(result.code, 0);
  t.regex(result.stderr, /cache\.backend/);
  t.regex(result.stderr, /server\.port/);
  t.regex(result.stderr, /cache\.nonsense/);
  t.false(result.stderr.includes('    at '), 'no stack trace');
});

test('starts, serves /healthz, and stops on SIGTERM with exit 0', async (t) => {
  let health = '';
  const result = await run({ MIRROR_PORT: '0', MIRROR_LOG_LEVEL: 'info', MIRROR_UPSTREAM_URL: 'http://127.0.0.1:9' }, [], (line, kill) => {
    const parsed = JSON.parse(line) as { msg?: string; address?: string };
    if (parsed.msg === 'github-mirror listening' && parsed.address) {
      void fetch(`${parsed.address}/healthz`)
        .then((r) => r.text())
        .then((text) => {
          health = text;
          kill('SIGTERM');
        });
    }
  });
  t.is(health, 'OK');
  t.is(result.code, 0);
  t.regex(result.stdout, /github-mirror stopped/);
});
