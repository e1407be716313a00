/** Command-line pieces shared by the bench runners (bench/run.ts, bench/ab.ts). */

/** The value after `--name`, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] ? (process.argv[at + 1] as string) : fallback;
}

/** The median of some numbers (NaN for none). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * A mirror variant: `--variant NAME:MIRROR_X=v,MIRROR_Y=w,--node-flag,@REV` (items starting with `--`
 * are node flags; `@REV` runs the mirror as that git revision builds it, bench/ab.ts only).
 */
export interface Variant {
  name: string;
  /** MIRROR_X=value settings. */
  env: string[];
  /** Node flags of that mirror's process. */
  flags: string[];
  /** The git revision whose build runs this mirror (`@REV`); absent = the working tree. */
  revision?: string;
}

/** Every `--variant` of the command line; a malformed one ends the process with exit code 2. */
export function variantsOf(argv: readonly string[] = process.argv): Variant[] {
  return argv
    .flatMap((value, i) => (argv[i - 1] === '--variant' ? [value] : []))
    .map((spec) => {
      const at = spec.indexOf(':');
      if (at <= 0 || !/^[\w.-]+$/.test(spec.slice(0, at))) {
        process.stderr.write(`bench: --variant must be NAME:MIRROR_X=value[,MIRROR_Y=value,--node-flag], not ${spec}\n`);
        process.exit(2);
      }
      const items = spec.slice(at + 1).split(',').filter(Boolean);
      const variant: Variant = {
        name: spec.slice(0, at),
        env: items.filter((item) => !item.startsWith('--') && !item.startsWith('@') && item.includes('=')),
        flags: items.filter((item) => item.startsWith('--')),
      };
      const revision = items.find((item) => item.startsWith('@'))?.slice(1);
      if (revision !== undefined && revision !== '') variant.revision = revision;
      return variant;
    });
}
