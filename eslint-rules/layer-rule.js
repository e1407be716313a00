// @ts-check
/**
 * The layer rule as ESLint config blocks: src/domain reaches nothing outside src/domain. No module
 * reference that resolves outside it (domain-boundary/no-escape), no dynamic import(), no Node
 * globals (time goes through ClockPort, hashing through KeyHasherPort, logs through events), no
 * reading the clock through Date, and no ambient declaration that would smuggle a global back in.
 * Web-standard, side-effect-free globals (TextEncoder, TextDecoder, URLSearchParams, JSON, Math...)
 * stay allowed. eslint.config.js spreads `domainLayerRule`; test/lint/layer-rule.test.ts lints
 * fixtures with it alone (no type-aware parsing needed).
 */
import { fileURLToPath } from 'node:url';
import domainBoundary from './domain-boundary.js';

/** Absolute path of the domain root (independent of the directory ESLint runs from). */
export const DOMAIN_ROOT = fileURLToPath(new URL('../src/domain', import.meta.url));

const DOMAIN_FILES = ['src/domain/**/*.{ts,mts,cts,js,mjs,cjs}'];

/** The one file allowed to declare globals: the web-standard ones the domain typecheck lacks. */
export const WEB_STANDARD_DECLARATIONS = 'src/domain/web-standard.d.ts';

const PORT = 'the domain reaches the runtime only through its ports';

/** Node (and non-pure web) globals the domain must not touch, with the way it should go instead. */
export const FORBIDDEN_GLOBALS = [
  ['process', PORT],
  ['Buffer', 'use Uint8Array, TextEncoder and TextDecoder'],
  ['global', PORT],
  ['globalThis', PORT],
  ['require', 'the domain imports only the domain'],
  ['module', 'the domain imports only the domain'],
  ['exports', 'the domain imports only the domain'],
  ['__dirname', PORT],
  ['__filename', PORT],
  ['setTimeout', 'time goes through ClockPort (sleep)'],
  ['setInterval', 'time goes through ClockPort (every)'],
  ['setImmediate', 'time goes through ClockPort'],
  ['clearTimeout', 'time goes through ClockPort'],
  ['clearInterval', 'time goes through ClockPort (every returns the cancel)'],
  ['clearImmediate', 'time goes through ClockPort'],
  ['queueMicrotask', 'time goes through ClockPort'],
  ['performance', 'time goes through ClockPort (now)'],
  ['fetch', 'GitHub is reached through UpstreamPort'],
  ['WebSocket', PORT],
  ['crypto', 'hashing goes through KeyHasherPort'],
  ['console', 'the domain emits events; a logging subscriber writes the lines'],
  ['navigator', PORT],
  ['MessageChannel', PORT],
  ['BroadcastChannel', PORT],
].map(([name, message]) => ({ name, message: `src/domain: ${message}.` }));

const CLOCK = 'src/domain: time goes through ClockPort (now).';

/** Syntax that escapes whatever the specifier says, or reads the clock behind ClockPort's back. */
const ESCAPE_SYNTAX = [
  { selector: 'ImportExpression', message: 'src/domain: no dynamic import(); the domain imports only the domain, statically.' },
  { selector: "MetaProperty[meta.name='import']", message: 'src/domain: no import.meta; where a module lives is not a domain concern.' },
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: CLOCK },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: CLOCK },
  { selector: "CallExpression[callee.name='Date']", message: CLOCK },
];

/** Ambient declarations: `declare const process: ...` would hide a global from no-restricted-globals. */
const AMBIENT_SYNTAX = [
  'VariableDeclaration[declare=true]',
  'TSDeclareFunction[declare=true]',
  'ClassDeclaration[declare=true]',
  "TSModuleDeclaration[kind='global']",
  "TSModuleDeclaration[declare=true][kind='namespace']",
].map((selector) => ({
  selector,
  message: `src/domain: no ambient declarations (globals the domain may use are declared in ${WEB_STANDARD_DECLARATIONS} only).`,
}));

/** @type {import('eslint').Linter.Config[]} */
export const domainLayerRule = [
  {
    name: 'layer-rule/domain',
    files: DOMAIN_FILES,
    plugins: { 'domain-boundary': domainBoundary },
    rules: {
      'domain-boundary/no-escape': ['error', { root: DOMAIN_ROOT }],
      'no-restricted-syntax': ['error', ...ESCAPE_SYNTAX, ...AMBIENT_SYNTAX],
      'no-restricted-globals': ['error', ...FORBIDDEN_GLOBALS],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    name: 'layer-rule/web-standard-declarations',
    files: [WEB_STANDARD_DECLARATIONS],
    rules: { 'no-restricted-syntax': ['error', ...ESCAPE_SYNTAX] },
  },
];
