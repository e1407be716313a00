/**
 * Loading (DESIGN.md §5): one convict schema, loaded from (lowest first) schema defaults,
 * config/default.json, config/<NODE_ENV>.json, the file named by `--config FILE` or MIRROR_CONFIG,
 * and environment variables (MIRROR_*, plus the Python ghmirror's variables as aliases).
 *
 * Strict: unknown keys and bad values fail, and every problem is reported at once in one
 * ConfigError. Adapters never see convict: `loadConfig` returns a plain typed object.
 * process.env is never mutated; tests pass `{ env, args }`.
 */
import convict from 'convict';
import { join, resolve } from 'node:path';
import { crossFieldProblems } from './cross-field.js';
import { ConfigError } from './errors.js';
import { configFileFromArgs, projectConfigDir, readConfigFile, type LoadedFile } from './files.js';
import { describeValue, parseHostPort } from './formats.js';
import { applyAliases, SERVICE_LINK, SERVICE_LINK_HINT, type Env } from './ghmirror-aliases.js';
import { getPath, hasPath, setPath, type Json } from './json.js';
import { configSchema, LEAF_BY_KEY } from './schema.js';
import type { MirrorConfig } from './types.js';

export interface LoadConfigOptions {
  /** Default process.env (never mutated). */
  env?: Record<string, string | undefined>;
  /** Default process.argv.slice(2); `--config FILE` and `--config=FILE` are read, the rest ignored. */
  args?: string[];
  /** Default <project root>/config. */
  configDir?: string;
}

export interface ResolvedConfig {
  config: MirrorConfig;
  /** NODE_ENV used to pick config/<NODE_ENV>.json. */
  nodeEnv: string;
  /** Config files that were found and merged, lowest priority first. */
  files: string[];
}

/** Loads, validates and returns the configuration with where it came from. Throws ConfigError. */
export function resolveConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const problems: string[] = [];

  // Empty or blank variables count as unset (`MIRROR_PORT=` in an env file, or an empty k8s value).
  const env: Env = {};
  for (const [name, value] of Object.entries(options.env ?? process.env)) {
    if (value !== undefined && value.trim() !== '') env[name] = value;
  }
  const args = options.args ?? process.argv.slice(2);
  const configDir = resolve(options.configDir ?? projectConfigDir());

  const nodeEnv = env.NODE_ENV?.trim() ?? 'development';
  const { env: effectiveEnv, origins } = applyAliases(env, problems);

  const loaded: LoadedFile[] = [];
  const add = (file: LoadedFile | undefined): void => {
    if (file) loaded.push(file);
  };
  add(readConfigFile(join(configDir, 'default.json'), undefined, problems));
  if (/^[A-Za-z0-9_-]+$/.test(nodeEnv)) {
    add(readConfigFile(join(configDir, `${nodeEnv}.json`), undefined, problems));
  } else {
    problems.push(`NODE_ENV: must be a simple name such as production (got ${describeValue(nodeEnv)})`);
  }
  const fromArgs = configFileFromArgs(args, problems);
  const explicit = fromArgs ?? env.MIRROR_CONFIG?.trim();
  if (explicit !== undefined) {
    add(readConfigFile(resolve(explicit), fromArgs !== undefined ? '--config' : 'MIRROR_CONFIG', problems));
  }

  const instance = convict<Json>(configSchema, { env: effectiveEnv, args: [] });
  for (const file of loaded) instance.load(file.data);
  const values = instance.getProperties();

  const sourceOf = (key: string): string | undefined => {
    const envName = LEAF_BY_KEY.get(key)?.env;
    if (envName !== undefined && effectiveEnv[envName] !== undefined) return origins.get(envName) ?? envName;
    return loaded.findLast((file) => hasPath(file.data, key))?.path;
  };

  const badKeys = new Set<string>();
  try {
    instance.validate({ allowed: 'strict' });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    for (const line of message.split('\n').filter((l) => l.trim() !== '')) {
      problems.push(describeConvictProblem(line, values, sourceOf, effectiveEnv, badKeys));
    }
  }

  if (!badKeys.has('cache.redis.sentinels')) normalizeHostPorts(values, 'cache.redis.sentinels');
  if (!badKeys.has('cache.redis.clusterNodes')) normalizeHostPorts(values, 'cache.redis.clusterNodes');
  crossFieldProblems(values as unknown as MirrorConfig, nodeEnv, badKeys, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return { config: values as unknown as MirrorConfig, nodeEnv, files: loaded.map((file) => file.path) };
}

/** Loads and validates the configuration. Throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): MirrorConfig {
  return resolveConfig(options).config;
}

/**
 * Turns one line of convict's validation message ("key: message: value was ...") into ours:
 * "key: message (got VALUE, from SOURCE)" — the value is left out for sensitive keys.
 */
function describeConvictProblem(
  line: string,
  values: Json,
  sourceOf: (key: string) => string | undefined,
  env: Env,
  badKeys: Set<string>,
): string {
  const separator = line.indexOf(': ');
  const key = separator > 0 ? line.slice(0, separator) : '';
  const spec = LEAF_BY_KEY.get(key);
  if (!spec) return line;
  badKeys.add(key);
  let message = line.slice(separator + 2);
  const valueSuffix = message.indexOf(': value was ');
  if (valueSuffix >= 0) message = message.slice(0, valueSuffix);
  const details: string[] = [];
  if (spec.sensitive !== true) details.push(`got ${describeValue(getPath(values, key))}`);
  const source = sourceOf(key);
  if (source !== undefined) details.push(`from ${source}`);
  const raw = source !== undefined ? env[source] : undefined;
  const hint = raw !== undefined && SERVICE_LINK.test(raw.trim()) ? `; ${SERVICE_LINK_HINT}` : '';
  return `${key}: ${message}${details.length > 0 ? ` (${details.join(', ')}${hint})` : ''}`;
}

function normalizeHostPorts(values: Json, key: string): void {
  const list = getPath(values, key);
  if (!Array.isArray(list)) return;
  setPath(
    values,
    key,
    list.map((entry: unknown) => (typeof entry === 'string' ? (parseHostPort(entry) ?? entry) : entry)),
  );
}
