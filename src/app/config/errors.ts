/**
 * Thrown by `loadConfig` when the configuration cannot be used. It carries EVERY problem found
 * (bad values from files and environment, unknown keys, cross-field rules), so an operator fixes
 * them all in one go instead of one per restart. No problem line ever holds a secret value.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID' as const;
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const count = problems.length;
    super(
      `Invalid configuration (${count} problem${count === 1 ? '' : 's'}):\n` +
        problems.map((problem) => `  - ${problem}`).join('\n'),
    );
    this.problems = Object.freeze([...problems]);
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}
