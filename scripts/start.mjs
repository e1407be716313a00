#!/usr/bin/env node
// `npm start` (package.json: `exec node scripts/start.mjs`): builds dist/ when it is missing or older
// than any source file, then runs the mirror IN THIS PROCESS. `exec` makes this process npm's direct
// child, so the SIGTERM/SIGINT a supervisor sends to npm reaches the mirror, which drains and stops;
// there is no grandchild left to orphan. Should npm die without passing a signal on (SIGKILL), the
// mirror notices it was re-parented and stops gracefully too.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'app', 'main.js');

function newestMtime(dir) {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    newest = Math.max(newest, name.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const stale = !existsSync(entry) || newestMtime(join(root, 'src')) > statSync(entry).mtimeMs;
if (stale) {
  process.stderr.write('github-mirror: building dist/ ...\n');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

// Our parent (npm) gone without a signal for us: stop as if it had sent SIGTERM.
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }
}, 1000);
watch.unref();

process.setSourceMapsEnabled(true);
await import(pathToFileURL(entry).href);
