/**
 * Introspection of the schema for docs/configuration.md (scripts/gen-config-docs.ts) and the
 * deploy tests: every key with its variable, ghmirror aliases, default, format and doc.
 */
import { envAliases } from './ghmirror-aliases.js';
import { FORMATS, type ConfigFormat } from './formats.js';
import { KEY_BY_ENV, LEAVES } from './schema.js';

export interface ConfigKeyInfo {
  key: string;
  env: string;
  /** Python mirror variables that can set this key. */
  aliases: readonly string[];
  default: unknown;
  format: ConfigFormat;
  formatDoc: string;
  doc: string;
  sensitive: boolean;
}

/** Every key of the schema, in schema order (used by scripts/gen-config-docs.ts). */
export function describeConfigKeys(): ConfigKeyInfo[] {
  return LEAVES.map(({ key, spec }) => ({
    key,
    env: spec.env,
    aliases: envAliases.filter((alias) => alias.key === key).flatMap((alias) => alias.aliases),
    default: spec.default,
    format: spec.format,
    formatDoc: FORMATS[spec.format].doc,
    doc: spec.doc,
    sensitive: spec.sensitive === true,
  }));
}

/** The schema key an environment variable sets, if any. */
export function configKeyForEnv(name: string): string | undefined {
  return KEY_BY_ENV.get(name);
}
