/**
 * The runner's side of bench/server.ts: starts a server in its own process with an IPC channel,
 * waits for its URL, and asks it for its CPU time / RSS / requests answered (`usage()`), so a row's
 * CPU per request is the server's own and the upstream's count says how many calls reached it.
 * The servers' stdout (a mirror's access log) goes to one file, /dev/null by default.
 *
 * Runtime `compiled` (the default) runs them as production does: `node --enable-source-maps` on
 * JavaScript emitted by tsc (into dist/bench-build/, rebuilt when a source is newer). Runtime `tsx`
 * runs the TypeScript through tsx's loader, which skips the build but adds ~30 MB to every process's
 * RSS — enough to spoil the memory check, harmless for a quick look at CPU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Usage } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

export type Runtime = 'compiled' | 'tsx';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Emits src/ and bench/ of the checkout at `tree` with tsc into `<tree>/dist/bench-build/` (no type
 * check: `npm run typecheck` does that) unless up to date; returns its bench/server.js.
 */
function buildServers(tree: string = root): string {
  const buildDir = join(tree, 'dist', 'bench-build');
  const entry = join(buildDir, 'bench', 'server.js');
  const sources = Math.max(newestMtime(join(tree, 'src')), newestMtime(join(tree, 'bench')), newestMtime(join(tree, 'test', 'support')));
  if (existsSync(entry) && statSync(entry).mtimeMs >= sources) return entry;
  process.stderr.write(`bench: building the servers with tsc into ${buildDir} ...\n`);
  mkdirSync(dirname(buildDir), { recursive: true });
  const project = join(tree, 'dist', 'tsconfig.bench-build.json');
  writeFileSync(
    project,
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { noEmit: false, noCheck: true, rootDir: '..', outDir: 'bench-build' },
      include: ['../src', '../bench'],
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`tsc build of the bench servers failed (${result.status})`);
  return entry;
}

/**
 * The servers of another revision (`git rev-parse`able: a commit, branch, `HEAD~3`), for an A/B run
 * against the working tree: its src/, bench/ and test/support/ extracted with `git archive` into
 * dist/baseline-<commit>/ (once; node_modules is this checkout's), built like the working tree's.
 * Returns the node arguments that run its bench/server.js.
 */
export function revisionCommand(revision: string): { commit: string; command: string[] } {
  const parsed = spawnSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], { cwd: root, encoding: 'utf8' });
  if (parsed.status !== 0) throw new Error(`bench: --baseline ${revision} is not a commit of this repository`);
  const commit = parsed.stdout.trim();
  const tree = join(root, 'dist', `baseline-${commit.slice(0, 12)}`);
  if (!existsSync(join(tree, 'src'))) {
    mkdirSync(tree, { recursive: true });
    const archive = spawnSync('sh', ['-c', `git archive ${commit} src bench test/support tsconfig.json package.json | tar -x -C "${tree}"`], { cwd: root, stdio: 'inherit' });
    if (archive.status !== 0) throw new Error(`bench: extracting ${commit} failed (${archive.status})`);
  }
  if (!existsSync(join(tree, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'dir');
  return { commit, command: ['--enable-source-maps', buildServers(tree)] };
}

export interface BenchServer {
  name: string;
  url: string;
  usage(): Promise<Usage>;
}

export class ServerFleet {
  private readonly children: ChildProcess[] = [];
  private readonly logFd: number;

  private readonly command: string[];

  /**
   * `profileDir`: mirrors, floors and the proxy run under `node --cpu-prof`, each writing
   * `<name>.cpuprofile` there when it stops (open it in Chrome DevTools or speedscope).
   */
  constructor(
    logPath: string,
    runtime: Runtime,
    private readonly profileDir?: string,
  ) {
    this.command = runtime === 'tsx' ? ['--import', 'tsx', join(here, 'server.ts')] : ['--enable-source-maps', buildServers()];
    this.logFd = openSync(logPath, 'a');
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  }

  /** Starts bench/server.ts with these arguments and resolves once it listens. */
  start(name: string, ...args: string[]): Promise<BenchServer> {
    return this.startWith(name, [], ...args);
  }

  /**
   * The same, with node flags of its own for this server (`--max-semi-space-size=32` …) and,
   * optionally, another build's command (revisionCommand).
   */
  startWith(name: string, nodeFlags: readonly string[], ...args: string[]): Promise<BenchServer> {
    return this.startFrom(this.command, name, nodeFlags, ...args);
  }

  startFrom(command: readonly string[], name: string, nodeFlags: readonly string[], ...args: string[]): Promise<BenchServer> {
    // every server but the upstream (which answers every row: profiling it would slow them all)
    const profile = this.profileDir !== undefined && args[0] !== 'upstream' ? ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
    const child = spawn(process.execPath, [...nodeFlags, ...profile, ...command, ...args], {
      stdio: ['ignore', this.logFd, 'inherit', 'ipc'],
    });
    this.children.push(child);
    const waiting: Array<(usage: Usage) => void> = [];
    const usage = (): Promise<Usage> =>
      new Promise((resolve, reject) => {
        if (!child.connected) {
          reject(new Error(`bench server ${name} is gone`));
          return;
        }
        waiting.push(resolve);
        child.send({ type: 'usage' });
      });
    return new Promise((resolve, reject) => {
      child.on('message', (message: { type?: string; url?: string }) => {
        if (message.type === 'ready' && message.url !== undefined) resolve({ name, url: message.url, usage });
        if (message.type === 'usage') waiting.shift()?.(message as Usage);
      });
      child.once('exit', (code) => reject(new Error(`bench server ${name} exited with ${code}`)));
    });
  }

  /** SIGTERM to every server started (each stops its listener and exits); resolves once they are gone. */
  async stop(): Promise<void> {
    const exits = this.children
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }));
    await Promise.all(exits);
    closeSync(this.logFd);
  }
}
