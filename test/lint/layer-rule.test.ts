/**
 * The layer rule (eslint-rules/layer-rule.js) lints fixture code as if it were a file in src/domain:
 * every kind of escape (relative at any depth, packages, built-ins, dynamic import, require,
 * export-from, type-only references, Node globals, the clock behind ClockPort, ambient declarations)
 * is reported by the rule meant to catch it, a clean domain file reports nothing, and
 * eslint.config.js really applies the rule to src/domain.
 */
import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { DOMAIN_ROOT, FORBIDDEN_GLOBALS, WEB_STANDARD_DECLARATIONS, domainLayerRule } from '../../eslint-rules/layer-rule.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The layer rule alone, on the TypeScript parser without type information: fixtures need no project.
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...domainLayerRule],
});

const ESCAPE = 'domain-boundary/no-escape';
const SYNTAX = 'no-restricted-syntax';
const GLOBALS = 'no-restricted-globals';

/** Lints `code` as the file src/domain/<file> and returns the rule ids reported, sorted. */
async function reported(file: string, code: string): Promise<{ rules: string[]; messages: Linter.LintMessage[] }> {
  const [result] = await eslint.lintText(code, { filePath: path.join(DOMAIN_ROOT, file) });
  const messages = result?.messages ?? [];
  return { rules: messages.map((m) => m.ruleId ?? `fatal: ${m.message}`).sort(), messages };
}

// file (under src/domain), code, the rules expected to report (one entry per report)
const escapes: [string, string, string[]][] = [
  // relative escapes at depth 1, 2 and 3, to the other layers, to test/ and bench/
  ['f.ts', "import { x } from '../adapters/http/x.js';", [ESCAPE]],
  ['f.ts', "import { x } from '../app/container.js';", [ESCAPE]],
  ['f.ts', "import { FakeClock } from '../../test/support/fakes.js';", [ESCAPE]],
  ['f.ts', "import { run } from '../../bench/run.js';", [ESCAPE]],
  ['f.ts', "import { x } from '../domain-extras/x.js';", [ESCAPE]],
  ['f.ts', "import x from '..';", [ESCAPE]],
  ['use-cases/f.ts', "import { x } from '../../adapters/cache/memory/memory-cache.adapter.js';", [ESCAPE]],
  ['use-cases/f.ts', "import { FakeClock } from '../../../test/support/fakes.js';", [ESCAPE]],
  ['use-cases/f.ts', "import { run } from '../../../bench/run.js';", [ESCAPE]],
  ['use-cases/f.ts', "import { x } from './../../app/x.js';", [ESCAPE]],
  ['a/b/f.ts', "import { x } from '../../../adapters/x.js';", [ESCAPE]],
  ['a/b/f.ts', "import { FakeClock } from '../../../../test/support/fakes.js';", [ESCAPE]],
  ['a/b/f.ts', "import { run } from '../../../../bench/run.js';", [ESCAPE]],
  ['a/b/f.ts', "import '../../../app/side-effect.js';", [ESCAPE]],
  ['f.ts', "import { x } from '/work/anything.js';", [ESCAPE]],
  ['f.ts', "import { x } from 'file:///work/anything.js';", [ESCAPE]],
  // packages, node: built-ins, bare built-ins
  ['f.ts', "import Redis from 'ioredis';", [ESCAPE]],
  ['f.ts', "import { S3Client } from '@aws-sdk/client-s3';", [ESCAPE]],
  ['f.ts', "import type { Dispatcher } from 'undici/types';", [ESCAPE]],
  ['f.ts', "import { readFile } from 'node:fs/promises';", [ESCAPE]],
  ['f.ts', "import { setTimeout as sleep } from 'node:timers/promises';", [ESCAPE]],
  ['f.ts', "import fs from 'fs';", [ESCAPE]],
  ['f.ts', "import * as http from 'http';", [ESCAPE]],
  ['f.ts', "import { createHash } from 'crypto';", [ESCAPE]],
  // type-only references
  ['use-cases/f.ts', "import type { X } from '../../adapters/x.js';", [ESCAPE]],
  ['use-cases/f.ts', "import { type X } from '../../app/x.js';", [ESCAPE]],
  ['f.ts', "export type T = import('ioredis').Redis;", [ESCAPE]],
  ['use-cases/f.ts', "export type T = import('../../adapters/x.js').X;", [ESCAPE]],
  ['f.ts', "declare module 'fastify' { interface FastifyInstance { x: 1 } }", [ESCAPE]],
  ['f.ts', '/// <reference types="node" />\nexport {};', [ESCAPE]],
  ['f.ts', '/// <reference path="../../node_modules/@types/node/index.d.ts" />\nexport {};', [ESCAPE]],
  ['f.ts', '/// <reference lib="dom" />\nexport {};', [ESCAPE]],
  // export ... from
  ['f.ts', "export * from '../adapters/x.js';", [ESCAPE]],
  ['f.ts', "export * as redis from 'ioredis';", [ESCAPE]],
  ['use-cases/f.ts', "export { x } from '../../app/x.js';", [ESCAPE]],
  ['use-cases/f.ts', "export type { X } from '../../../test/support/fakes.js';", [ESCAPE]],
  // dynamic import(): refused as syntax, and its specifier checked too
  ['f.ts', "export const r = await import('ioredis');", [ESCAPE, SYNTAX]],
  ['use-cases/f.ts', "export const r = await import('../../adapters/x.js');", [ESCAPE, SYNTAX]],
  ['f.ts', "export const r = await import('./model.js');", [SYNTAX]],
  ['f.ts', 'export const load = (name: string) => import(name);', [ESCAPE, SYNTAX]],
  ['f.ts', 'export const r = await import(`node:fs`);', [ESCAPE, SYNTAX]],
  // require, in both spellings
  ['f.ts', "export const fs: unknown = require('fs');", [GLOBALS]],
  ['f.ts', "import fs = require('fs');\nexport { fs };", [ESCAPE]],
  ['f.ts', "export const r: unknown = module.require('fs');", [GLOBALS]],
  // the clock behind ClockPort's back, the module's own location, string code
  ['f.ts', 'export const now = Date.now();', [SYNTAX]],
  ['f.ts', 'export const now = Date.now;', [SYNTAX]],
  ['f.ts', 'export const now = new Date();', [SYNTAX]],
  ['f.ts', 'export const now = Date();', [SYNTAX]],
  ['f.ts', 'export const here = import.meta.url;', [SYNTAX]],
  ['f.ts', "export const p: unknown = eval('process');", ['no-eval']],
  ['f.ts', "export const p: unknown = (0, eval)('process');", ['no-eval']],
  ['f.ts', "export const p: unknown = new Function('return process')();", ['no-new-func']],
  // ambient declarations that would hide a global from no-restricted-globals
  ['f.ts', 'declare const process: { env: Record<string, string> };\nexport const env = process.env;', [SYNTAX]],
  ['f.ts', 'export declare const process: { env: Record<string, string> };', [SYNTAX]],
  ['f.ts', 'declare function setTimeout(f: () => void, ms: number): number;\nsetTimeout(() => {}, 1);', [SYNTAX]],
  ['f.ts', 'declare class Buffer {}\nexport const b = new Buffer();', [SYNTAX]],
  ['f.ts', 'declare global { var leak: number }\nexport {};', [SYNTAX]],
  ['f.ts', 'declare namespace NodeJS { interface ProcessEnv { X: string } }', [SYNTAX]],
  // the declarations file may declare globals, but not escape
  [path.relative('src/domain', WEB_STANDARD_DECLARATIONS), '/// <reference types="node" />', [ESCAPE]],
  [path.relative('src/domain', WEB_STANDARD_DECLARATIONS), "type T = import('node:buffer').Buffer;", [ESCAPE]],
  [path.relative('src/domain', WEB_STANDARD_DECLARATIONS), 'declare const x: number;\nexport const y = Date.now();', [SYNTAX]],
];

for (const [file, code, expected] of escapes) {
  test(`refused in src/domain/${file}: ${code.replace(/\n/g, ' ')}`, async (t) => {
    const { rules, messages } = await reported(file, code);
    t.false(messages.some((m) => m.fatal), 'the fixture parses');
    t.deepEqual(rules, [...expected].sort());
  });
}

// Named here, not read from the config: dropping one from the rule must fail this test.
const NODE_GLOBALS = [
  'process', 'Buffer', 'global', 'globalThis', 'require', 'module', 'exports', '__dirname', '__filename',
  'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate',
  'queueMicrotask', 'performance', 'fetch', 'WebSocket', 'crypto', 'console', 'navigator',
  'MessageChannel', 'BroadcastChannel',
];

for (const name of NODE_GLOBALS) {
  test(`refused in src/domain: the global ${name}`, async (t) => {
    for (const [file, code] of [
      ['f.ts', `export const g: unknown = ${name};`],
      ['use-cases/f.ts', `export function f(): unknown { return typeof ${name}; }`],
    ] as const) {
      const { rules, messages } = await reported(file, code);
      t.false(messages.some((m) => m.fatal), 'the fixture parses');
      t.deepEqual(rules, [GLOBALS], code);
      t.regex(messages[0]?.message ?? '', /src\/domain/, 'the message says why');
    }
  });
}

test('every global the rule forbids is exercised here', (t) => {
  t.deepEqual(FORBIDDEN_GLOBALS.map((g) => g.name).sort(), [...NODE_GLOBALS].sort());
});

test('the ways a Node global is reached are all reported', async (t) => {
  const code = [
    'export const env = process.env.HOME;',
    "export const bytes = Buffer.from('x');",
    'export const sneaky: unknown = globalThis.process;',
    'export const timer = setTimeout(() => {}, 10);',
    'export const later = () => setInterval(() => {}, 10);',
  ].join('\n');
  const { rules, messages } = await reported('use-cases/f.ts', code);
  t.false(messages.some((m) => m.fatal));
  t.deepEqual(rules, [GLOBALS, GLOBALS, GLOBALS, GLOBALS, GLOBALS]);
  t.deepEqual(messages.map((m) => m.line), [1, 2, 3, 4, 5]);
});

test('a clean domain file reports nothing', async (t) => {
  const code = `
    import { ErrorCode } from '../errors.js';
    import type { ClockPort } from '../ports/clock.port.js';
    import * as model from '../model.js';
    import { isRateLimited } from '../../domain/http-semantics.js';
    import './sibling.js';
    export { holdLease } from './hold-lease.js';
    export type { CachedEntry } from '../model.js';
    export * from '../events/events.js';
    type Port = import('../ports/clock.port.js').ClockPort;

    const encoder = new TextEncoder();
    const decoder = new TextDecoder();

    export class Resolver {
      declare readonly name: string;
      constructor(private readonly clock: Port) {}
      stamp(): string {
        return new Date(this.clock.now()).toISOString();
      }
    }

    // A parameter that shadows a global is not the global.
    export function describe(clock: ClockPort, process: string, body: Uint8Array): unknown[] {
      const query = new URLSearchParams('per_page=10');
      const parsed: unknown = JSON.parse(decoder.decode(body));
      return [ErrorCode, model, process, encoder.encode(JSON.stringify({ at: clock.now() })), Math.max(1, 2),
        query.get('per_page'), parsed, isRateLimited, Date.parse('Tue, 01 Jan 2030 00:00:00 GMT'),
        new Uint8Array(0), Promise.resolve(1), new Map(), Symbol.iterator];
    }
  `;
  t.deepEqual((await reported('use-cases/clean.ts', code)).rules, []);
  const { rules } = await reported('f.ts', "import { x } from './model.js';\nimport { y } from '../domain/errors.js';\nexport { x, y };");
  t.deepEqual(rules, [], 'a depth-1 file reaching back into the domain');
});

test('the declarations file may declare the web-standard globals', async (t) => {
  const code = 'interface TextEncoder { encode(input?: string): Uint8Array }\ndeclare const TextEncoder: { new (): TextEncoder };';
  const { rules } = await reported(path.relative('src/domain', WEB_STANDARD_DECLARATIONS), code);
  t.deepEqual(rules, []);
});

test('files outside src/domain are not held to the layer rule', async (t) => {
  const [result] = await eslint.lintText("import Redis from 'ioredis';\nexport const t = setTimeout;\nexport const r = await import('undici');", {
    filePath: path.join(ROOT, 'src/adapters/cache/redis/x.ts'),
  });
  t.deepEqual(result?.messages ?? [], []);
});

test('eslint.config.js applies the layer rule to src/domain and only there', async (t) => {
  const project = new ESLint({ cwd: ROOT });
  const domain = (await project.calculateConfigForFile(path.join(ROOT, 'src/domain/use-cases/x.ts'))) as Linter.Config;
  const layer = domainLayerRule[0]?.rules ?? {};
  t.true(Object.keys(layer).length >= 5);
  for (const [rule, setting] of Object.entries(layer)) {
    const actual = domain.rules?.[rule] as unknown[] | undefined;
    t.is(actual?.[0], 2, `${rule} is an error`);
    // ESLint fills in defaults for rules configured without options; configured options arrive as given.
    if (Array.isArray(setting)) t.deepEqual(actual?.slice(1), setting.slice(1), rule);
  }
  const adapter = (await project.calculateConfigForFile(path.join(ROOT, 'src/adapters/x.ts'))) as Linter.Config;
  t.is(adapter.rules?.['domain-boundary/no-escape'], undefined);
  t.is(adapter.rules?.['no-restricted-globals'], undefined);
});
