/**
 * The runtime image without a Docker engine: the Dockerfile's stages are replayed in a temporary
 * directory — the build stage's COPY lines and `npm run build` (with the project's node_modules in
 * place of its `npm ci`), then the runtime stage's COPY lines and its `npm ci --omit=dev` against the
 * npm registry. The result holds production dependencies only; its ENTRYPOINT starts with the
 * production config (NODE_ENV=production, Redis backend) and answers /healthz, serves a GET through a
 * fake GitHub, passes the image's HEALTHCHECK, and exits 0 on SIGTERM.
 *
 * Slow by nature (an npm install and a TypeScript build): one test, a generous timeout.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { FakeGitHub } from '../support/fake-github.js';
import { freePort, startRedis, REDIS_SERVER_BIN, type RedisProcess } from '../support/redis-harness.js';
import { ROOT } from './manifests.js';
import { execForm, isIgnored, parseCopy, parseDockerignore, parseEnv, parseHealthcheck, readDockerfile, type Stage } from './dockerfile.js';

const children = new Set<ChildProcess>();
let work: string | undefined;
let github: FakeGitHub | undefined;
let redis: RedisProcess | undefined;

test.after.always(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await redis?.stop();
  await github?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A clean environment: no npm_* variables from the ava process, no proxy to the loopback. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'npm_config_registry', 'NPM_CONFIG_REGISTRY']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Maps an absolute path inside the image (`/build/dist`) to the directory that plays that stage. */
function hostPath(imagePath: string, workdir: string, stageRoot: string, stageDir: string): string {
  const absolute = posix.isAbsolute(imagePath) ? imagePath : posix.join(workdir, imagePath);
  const inside = posix.relative(stageRoot, absolute);
  if (inside.startsWith('..')) throw new Error(`${imagePath} is outside ${stageRoot}: teach runtime-image.test.ts this layout`);
  return join(stageDir, inside);
}

/** COPY from the build context: the ignored files stay out, as `docker build` would leave them out. */
function copyFromContext(sources: string[], dest: string, rules: ReturnType<typeof parseDockerignore>): void {
  const destIsDir = dest.endsWith('/') || sources.length > 1;
  for (const source of sources) {
    const from = join(ROOT, source);
    if (!existsSync(from)) throw new Error(`COPY ${source}: not in the build context`);
    if (isIgnored(rules, source)) throw new Error(`COPY ${source}: excluded by .dockerignore`);
    const to = destIsDir ? join(dest, posix.basename(source)) : dest;
    cpSync(from, to, {
      recursive: true,
      filter: (path) => !isIgnored(rules, relative(ROOT, path).split('\\').join('/') || '.'),
    });
  }
}

interface Replayed {
  appDir: string;
  env: Record<string, string>;
  user: string;
  entrypoint: string[];
  healthcheck: string[];
}

/** Replays the build and runtime stages; returns where the runtime stage's /app is, and how it starts. */
async function replay(dir: string): Promise<Replayed> {
  const dockerfile = readDockerfile(join(ROOT, 'Dockerfile'));
  const rules = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
  const stageDirs = new Map<string, { root: string; dir: string }>();
  let result: Replayed | undefined;

  for (const [index, stage] of dockerfile.stages.entries()) {
    const stageDir = join(dir, stage.name);
    mkdirSync(stageDir, { recursive: true });
    let workdir = '/';
    let root: string | undefined;
    const env: Record<string, string> = {};
    let user = 'root';
    let entrypoint: string[] = [];
    let healthcheck: string[] = [];
    const where = (imagePath: string): string => hostPath(imagePath, workdir, root ?? workdir, stageDir);

    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR': {
          workdir = posix.resolve(workdir, instruction.text);
          root ??= workdir; // the stage's first WORKDIR is played by stageDir
          mkdirSync(where(workdir), { recursive: true });
          break;
        }
        case 'ENV':
          Object.assign(env, parseEnv(instruction.text));
          break;
        case 'COPY': {
          const copy = parseCopy(instruction.text);
          const dest = where(copy.dest) + (copy.dest.endsWith('/') ? '/' : '');
          if (copy.from === undefined) {
            copyFromContext(copy.sources, dest, rules);
          } else {
            const from = stageDirs.get(copy.from);
            if (from === undefined) throw new Error(`COPY --from=${copy.from}: no such earlier stage`);
            for (const source of copy.sources) {
              cpSync(hostPath(source, from.root, from.root, from.dir), copy.dest.endsWith('/') ? join(dest, posix.basename(source)) : dest, { recursive: true });
            }
          }
          break;
        }
        case 'RUN':
          await replayRun(stage, instruction.text, where(workdir), where);
          break;
        case 'USER':
          user = instruction.text;
          break;
        case 'ENTRYPOINT':
          entrypoint = execForm(instruction.text) ?? [];
          break;
        case 'HEALTHCHECK':
          healthcheck = parseHealthcheck(instruction.text).command;
          break;
        case 'EXPOSE':
        case 'ARG':
        case 'LABEL':
          break;
        default:
          throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not replayed by runtime-image.test.ts`);
      }
    }
    stageDirs.set(stage.name, { root: root ?? '/', dir: stageDir });
    if (index === dockerfile.stages.length - 1) result = { appDir: where(workdir), env, user, entrypoint, healthcheck };
  }
  if (result === undefined) throw new Error('the Dockerfile has no stage');
  return result;
}

/** RUN lines, one `&&` step at a time; only the steps this Dockerfile uses are known. */
async function replayRun(stage: Stage, text: string, cwd: string, where: (imagePath: string) => string): Promise<void> {
  for (const step of text.split('&&').map((s) => s.trim())) {
    const words = step.split(/\s+/);
    if (step === 'npm run build') {
      const build = await run('npm', ['run', 'build'], { cwd, env: baseEnv({}), timeoutMs: 240_000 });
      if (build.code !== 0) throw new Error(`${stage.name}: npm run build failed\n${build.stdout}\n${build.stderr}`);
    } else if (words[0] === 'npm' && words[1] === 'ci' && !words.includes('--omit=dev')) {
      // The build stage's full install: the project's own node_modules (same lockfile) stand in for it.
      symlinkSync(join(ROOT, 'node_modules'), join(cwd, 'node_modules'), 'dir');
    } else if (words[0] === 'npm' && words[1] === 'ci') {
      // The real thing, against the npm registry, with the Dockerfile's flags.
      const install = await run('npm', words.slice(1), {
        cwd,
        env: baseEnv({ npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' }),
        timeoutMs: 420_000,
      });
      if (install.code !== 0) throw new Error(`${stage.name}: ${step} failed\n${install.stdout}\n${install.stderr}`);
    } else if (step.startsWith('npm cache clean')) {
      // Leaves the machine's npm cache alone: it only makes the image smaller.
    } else if (words[0] === 'mkdir') {
      for (const path of words.slice(1).filter((w) => !w.startsWith('-'))) mkdirSync(where(path), { recursive: true });
    } else if (words[0] === 'chown' || words[0] === 'chmod') {
      // Ownership inside the image; nothing to replay here.
    } else {
      throw new Error(`${stage.name}: RUN step "${step}" is not replayed by runtime-image.test.ts`);
    }
  }
}

function dependencyNames(appDir: string): { installed: Set<string>; dependencies: string[]; devDependencies: string[] } {
  const pkg = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const installed = new Set<string>();
  for (const entry of readdirSync(join(appDir, 'node_modules'))) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) for (const sub of readdirSync(join(appDir, 'node_modules', entry))) installed.add(`${entry}/${sub}`);
    else installed.add(entry);
  }
  return { installed, dependencies: Object.keys(pkg.dependencies ?? {}), devDependencies: Object.keys(pkg.devDependencies ?? {}) };
}

async function waitForHealthz(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the mirror exited (${child.exitCode ?? child.signalCode})\n${output()}`);
    try {
      const response = await fetch(`${url}/healthz`);
      await response.body?.cancel();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`/healthz never answered 200\n${output()}`);
}

test('the runtime stage, replayed: production dependencies only; starts with the production config and serves', async (t) => {
  t.timeout(15 * 60_000, 'npm ci --omit=dev and a TypeScript build');
  work = mkdtempSync(join(tmpdir(), 'ghm-image-'));
  const image = await replay(work);
  const { appDir } = image;

  // What is in /app: nothing but what the runtime stage put there.
  t.deepEqual(readdirSync(appDir).sort(), ['config', 'dist', 'node_modules', 'package-lock.json', 'package.json', 'var'].sort());
  t.true(existsSync(join(appDir, 'dist', 'app', 'main.js')));
  const { installed, dependencies, devDependencies } = dependencyNames(appDir);
  for (const name of dependencies) t.true(installed.has(name), `dependency ${name} installed`);
  for (const name of devDependencies) t.false(installed.has(name), `devDependency ${name} not installed`);
  t.regex(image.user, /^[1-9]\d*(?::\d+)?$/, 'runs as a non-root user');
  t.is(image.env.NODE_ENV, 'production');

  github = await FakeGitHub.start();
  github.setResource('/repos/octo/hello', { body: { id: 1, name: 'hello', url: `${github.url}/repos/octo/hello` } });
  const port = await freePort();
  const env: Record<string, string> = {
    ...image.env,
    MIRROR_PORT: String(port),
    MIRROR_HOST: '127.0.0.1',
    MIRROR_UPSTREAM_URL: github.url,
    MIRROR_CACHE_SECRET: 'runtime-image-test-secret',
    MIRROR_LOG_LEVEL: 'info',
  };
  // config/production.json picks Redis: give it a real one when the binary is there (CI installs it).
  if (existsSync(REDIS_SERVER_BIN)) {
    redis = await startRedis();
    env.MIRROR_REDIS_URL = redis.url;
  } else {
    t.log(`${REDIS_SERVER_BIN} not found: running with MIRROR_CACHE_BACKEND=memory`);
    env.MIRROR_CACHE_BACKEND = 'memory';
  }

  const [command, ...args] = image.entrypoint;
  t.is(command, 'node');
  const child = spawn(process.execPath, args, { cwd: appDir, env: baseEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;

  await waitForHealthz(base, child, () => output);
  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 200);
  t.is(await health.text(), 'OK');
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 200, 'ready');
  const readiness = (await ready.json()) as { cache?: { backend?: string } };
  // start() connects Redis before listening: the production image serves from the shared cache
  t.is(readiness.cache?.backend, 'redis');

  // A GET through the built image: fetched, then revalidated.
  const headers = { authorization: 'token runtime-image' };
  const first = await fetch(`${base}/repos/octo/hello`, { headers });
  const second = await fetch(`${base}/repos/octo/hello`, { headers });
  t.is(first.status, 200);
  t.is(first.headers.get('x-cache'), 'ONLINE_MISS');
  t.is(second.headers.get('x-cache'), 'ONLINE_HIT');
  t.deepEqual(await second.json(), { id: 1, name: 'hello', url: `${base}/repos/octo/hello` });
  await first.body?.cancel();
  const metrics = await fetch(`${base}/metrics`);
  t.regex(await metrics.text(), /request_latency_seconds_count\{[^}]*cache="ONLINE_HIT"/);

  // The image's HEALTHCHECK, as Docker would run it (same environment, WORKDIR /app).
  const [hcCommand, ...hcArgs] = image.healthcheck;
  t.is(hcCommand, 'node');
  const healthcheck = await run(process.execPath, hcArgs, { cwd: appDir, env: baseEnv(env), timeoutMs: 60_000 });
  t.is(healthcheck.code, 0, `HEALTHCHECK passes\n${healthcheck.stdout}${healthcheck.stderr}`);
  const unhealthy = await run(process.execPath, hcArgs, { cwd: appDir, env: baseEnv({ ...env, MIRROR_PORT: String(await freePort()) }), timeoutMs: 60_000 });
  t.not(unhealthy.code, 0, 'HEALTHCHECK fails when nothing answers');

  child.kill('SIGTERM');
  const exit = await exited;
  t.is(exit.code, 0, `exit 0 on SIGTERM\n${output}`);
  t.regex(output, /github-mirror stopped/);
  t.false(output.includes('runtime-image-test-secret'), 'the cache secret is never logged');

  // The same image serving HTTPS (server.tls.*): the HEALTHCHECK follows the configuration.
  const certFile = join(work, 'cert.pem');
  const keyFile = join(work, 'key.pem');
  const openssl = await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { cwd: work, env: baseEnv({}), timeoutMs: 60_000 },
  );
  t.is(openssl.code, 0, openssl.stderr);
  const tlsPort = await freePort();
  const tlsEnv = { ...env, MIRROR_PORT: String(tlsPort), MIRROR_TLS_CERT: certFile, MIRROR_TLS_KEY: keyFile };
  const tlsChild = spawn(process.execPath, args, { cwd: appDir, env: baseEnv(tlsEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(tlsChild);
  let tlsOutput = '';
  tlsChild.stdout.on('data', (chunk: Buffer) => (tlsOutput += chunk.toString()));
  tlsChild.stderr.on('data', (chunk: Buffer) => (tlsOutput += chunk.toString()));
  const tlsExited = new Promise<number | null>((resolve) => tlsChild.on('exit', (code) => resolve(code)));
  let tlsHealthy: RunResult | undefined;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    tlsHealthy = await run(process.execPath, hcArgs, { cwd: appDir, env: baseEnv(tlsEnv), timeoutMs: 60_000 });
    if (tlsHealthy.code === 0 || tlsChild.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(tlsHealthy?.code, 0, `HEALTHCHECK passes over HTTPS\n${tlsOutput}`);
  tlsChild.kill('SIGTERM');
  t.is(await tlsExited, 0);
});
