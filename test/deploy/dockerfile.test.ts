/**
 * The Dockerfile and .dockerignore, read without a Docker engine: a build stage and a runtime stage
 * with production dependencies only, a non-root user, dist/ and config/, a HEALTHCHECK on /healthz,
 * the app's port; and a build context that keeps what the COPY lines need and nothing secret.
 * (test/deploy/runtime-image.test.ts replays the stages and runs the result.)
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../../src/app/config/index.js';
import { ROOT } from './manifests.js';
import { execForm, isIgnored, parseCopy, parseDockerignore, parseEnv, parseHealthcheck, readDockerfile, type Stage } from './dockerfile.js';

const dockerfile = readDockerfile(join(ROOT, 'Dockerfile'));
const ignore = parseDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; engines: { node: string } };

function stage(name: string): Stage {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no stage ${name}`);
  return found;
}

function keyword(s: Stage, word: string): string[] {
  return s.instructions.filter((i) => i.keyword === word).map((i) => i.text);
}

test('two stages: build, then runtime (the last, the one `docker build` produces)', (t) => {
  t.deepEqual(
    dockerfile.stages.map((s) => s.name),
    ['build', 'runtime'],
  );
  const nodeMajor = /(\d+)/.exec(pkg.engines.node)?.[1];
  for (const s of dockerfile.stages) {
    t.regex(s.image, new RegExp(`^node:${nodeMajor}-`), `${s.name} runs the Node major of package.json engines`);
    t.false(s.image.endsWith(':latest'), 'a pinned tag');
  }
  t.true(keyword(stage('build'), 'RUN').some((run) => /\bnpm run build\b/.test(run)), 'the build stage compiles');
});

test('runtime stage: production dependencies only, dist and config, NODE_ENV=production', (t) => {
  const runtime = stage('runtime');
  const runs = keyword(runtime, 'RUN');
  t.true(runs.some((run) => /\bnpm ci\b[^&]*--omit=dev/.test(run)), 'npm ci --omit=dev');
  t.false(runs.some((run) => /\bnpm (?:install|i)\b/.test(run)), 'no npm install (the lockfile decides)');
  t.false(runs.some((run) => /\bnpm run build\b|\btsc\b/.test(run)), 'nothing is compiled in the runtime stage');
  const copies = keyword(runtime, 'COPY').map(parseCopy);
  const fromBuild = copies.filter((c) => c.from === 'build');
  t.true(fromBuild.some((c) => c.sources.some((s) => s.endsWith('/dist')) && c.dest.replace(/\/$/, '').endsWith('dist')), 'dist/ comes from the build stage');
  const fromContext = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
  t.true(fromContext.includes('config'), 'config/ is copied');
  t.true(fromContext.includes('package.json'), 'package.json ("type": "module") is copied');
  for (const forbidden of ['src', 'test', 'node_modules', '.', 'bench']) t.false(fromContext.includes(forbidden), `${forbidden} stays out of the runtime image`);
  const env = Object.assign({}, ...keyword(runtime, 'ENV').map(parseEnv)) as Record<string, string>;
  t.is(env.NODE_ENV, 'production');
});

test('runtime stage: non-root numeric user, the configured port, a HEALTHCHECK on /healthz, the package entry point', (t) => {
  const runtime = stage('runtime');
  const users = keyword(runtime, 'USER');
  const user = users.at(-1) ?? '';
  t.regex(user, /^\d+(?::\d+)?$/, 'numeric (runAsNonRoot can verify it)');
  t.not(Number(user.split(':')[0]), 0, 'not root');
  t.deepEqual(keyword(runtime, 'EXPOSE'), [String(configSchema.server.port.default)]);

  const healthchecks = keyword(runtime, 'HEALTHCHECK');
  t.is(healthchecks.length, 1);
  const healthcheck = parseHealthcheck(healthchecks[0] as string);
  t.is(healthcheck.command[0], 'node', 'node is all the image needs (no curl in the slim image)');
  t.true(healthcheck.command.join(' ').includes('/healthz'));
  t.truthy(healthcheck.options['start-period']);

  const entrypoint = execForm(keyword(runtime, 'ENTRYPOINT').at(-1) ?? '');
  t.truthy(entrypoint, 'exec form: node is PID 1 and gets SIGTERM');
  t.is(entrypoint?.[0], 'node');
  t.is(entrypoint?.at(-1), pkg.main, 'runs package.json main');
  t.is(keyword(runtime, 'CMD').length, 0, 'no CMD: Kubernetes args (--config FILE) are appended to the entrypoint');
});

test('.dockerignore keeps every COPY source and leaves out dependencies, builds and secrets', (t) => {
  for (const s of dockerfile.stages) {
    for (const copy of keyword(s, 'COPY').map(parseCopy)) {
      if (copy.from !== undefined) continue;
      for (const source of copy.sources) {
        t.true(existsSync(join(ROOT, source)), `${source} exists`);
        t.false(isIgnored(ignore, source), `${source} is in the build context`);
      }
    }
  }
  for (const path of ['src/app/main.ts', 'config/production.json', 'tsconfig.build.json']) t.false(isIgnored(ignore, path), path);
  for (const path of ['node_modules/fastify/package.json', 'dist/app/main.js', '.git/config', 'var/snapshots/x', '.env', '.env.production', 'test/e2e/core.test.ts']) {
    t.true(isIgnored(ignore, path), `${path} is left out`);
  }
});
