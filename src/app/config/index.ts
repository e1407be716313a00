/**
 * The configuration room (DESIGN.md §5): the public API of src/app/config/. Everything else in the
 * folder is private to it.
 *
 *   types.ts             MirrorConfig and its value lists
 *   formats.ts           custom convict formats (registered with convict on import)
 *   schema.ts            the schema table
 *   ghmirror-aliases.ts  the Python mirror's environment variables
 *   load.ts              sources in order, validation, cross-field checks, one ConfigError
 *   files.ts, json.ts, cross-field.ts   what load.ts is built from
 *   redact.ts            redactedConfig for the start log line
 *   docs.ts              schema introspection for scripts/gen-config-docs.ts
 *   errors.ts            ConfigError
 */
export {
  CACHE_BACKENDS,
  LOG_LEVELS,
  REDIS_SCALE_READS,
  SNAPSHOT_STORES,
  type BreakerConfig,
  type CacheBackend,
  type HostPort,
  type LogLevel,
  type MirrorConfig,
  type RedisScaleReads,
  type SnapshotStoreKind,
} from './types.js';
export { parseHostPort, type ConfigFormat } from './formats.js';
export { configSchema, type ConfigKeySpec, type ConfigSchemaTree } from './schema.js';
export { envAliases, type EnvAlias } from './ghmirror-aliases.js';
export { projectConfigDir } from './files.js';
export { loadConfig, resolveConfig, type LoadConfigOptions, type ResolvedConfig } from './load.js';
export { REDACTED, redactedConfig } from './redact.js';
export { configKeyForEnv, describeConfigKeys, type ConfigKeyInfo } from './docs.js';
export { ConfigError, isConfigError } from './errors.js';
