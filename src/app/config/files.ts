/**
 * Config files: finding <project root>/config, reading `--config FILE` / `--config=FILE`, and
 * reading one JSON file strictly (unknown keys and misplaced sections become problems naming the
 * key and the file, with a "did you mean" when a known key is close).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPlainObject, kindOf, type Json } from './json.js';
import { configSchema, isKeySpec, type ConfigSchemaTree } from './schema.js';

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i += 1) {
    const row = d[i] ?? [];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
}

function suggestion(name: string, prefix: string, siblings: string[]): string {
  const lower = name.toLowerCase();
  const limit = name.length >= 6 ? 2 : 1;
  const best = siblings
    .map((candidate) => ({ candidate, distance: editDistance(lower, candidate.toLowerCase()) }))
    .sort((x, y) => x.distance - y.distance)[0];
  if (!best || best.distance > limit) return '';
  return ` (did you mean '${prefix === '' ? '' : `${prefix}.`}${best.candidate}'?)`;
}

/**
 * Keeps what the schema declares; every unknown key or misplaced section becomes a problem naming
 * the key and the file (convict's own strict check cannot say which file a key came from).
 */
function sanitizeFile(data: Json, tree: ConfigSchemaTree, prefix: string, file: string, problems: string[]): Json {
  const out: Json = {};
  for (const [name, value] of Object.entries(data)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    const node = Object.hasOwn(tree, name) ? tree[name] : undefined;
    if (node === undefined) {
      problems.push(`unknown key '${key}' in ${file}${suggestion(name, prefix, Object.keys(tree))}`);
    } else if (isKeySpec(node)) {
      if (isPlainObject(value)) problems.push(`${key}: must be a single value, not an object (in ${file})`);
      else out[name] = value;
    } else if (isPlainObject(value)) {
      out[name] = sanitizeFile(value, node, key, file, problems);
    } else {
      problems.push(`${key}: must be an object with keys ${Object.keys(node).join(', ')} (got ${kindOf(value)} in ${file})`);
    }
  }
  return out;
}

function jsonErrorMessage(error: unknown, text: string): string {
  let message = error instanceof Error ? error.message : String(error);
  // V8 quotes a piece of the text ('..."secret": hunter2}" is not valid JSON'); config files may
  // hold secrets, so the quote goes.
  if (message.endsWith('is not valid JSON')) message = `${message.replace(/,\s*(?:\.\.\.)?".*$/s, '')} (not valid JSON)`;
  const position = /at position (\d+)/.exec(message);
  if (position?.[1] !== undefined) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    message = message.replace(/at position \d+/, `at line ${line}, column ${column}`);
  }
  return message;
}

export interface LoadedFile {
  path: string;
  data: Json;
}

export function readConfigFile(path: string, origin: string | undefined, problems: string[]): LoadedFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && origin === undefined) return undefined; // optional file
    problems.push(
      code === 'ENOENT'
        ? `config file not found: ${path} (given by ${origin})`
        : `cannot read config file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return undefined;
  }
  text = text.replace(/^\uFEFF/, '');
  if (text.trim() === '') return { path, data: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    problems.push(`cannot parse config file ${path}: ${jsonErrorMessage(error, text)}`);
    return undefined;
  }
  if (!isPlainObject(parsed)) {
    problems.push(`config file ${path} must hold a JSON object (got ${kindOf(parsed)})`);
    return undefined;
  }
  return { path, data: sanitizeFile(parsed, configSchema, '', path, problems) };
}

export function configFileFromArgs(args: readonly string[], problems: string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === '--') break;
    if (arg === '--config') {
      const next = args[i + 1];
      if (next === undefined || next === '' || next.startsWith('--')) {
        problems.push('--config: needs a file path (--config FILE or --config=FILE)');
      } else {
        file = next;
        i += 1;
      }
    } else if (arg?.startsWith('--config=')) {
      const value = arg.slice('--config='.length);
      if (value === '') problems.push('--config: needs a file path (--config FILE or --config=FILE)');
      else file = value;
    }
  }
  return file;
}

/**
 * <project root>/config, found from this file's location so it works from src/ (tsx) and from the
 * compiled output (dist/...): the nearest ancestor holding package.json and a config/ directory.
 */
export function projectConfigDir(): string {
  let firstPackageDir: string | undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      if (existsSync(join(dir, 'config'))) return join(dir, 'config');
      firstPackageDir ??= dir;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(firstPackageDir ?? process.cwd(), 'config');
}
