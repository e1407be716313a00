/**
 * fastify's `childLoggerFactory` for the mirror: the per-request child logger (with its `reqId`
 * binding) is only built when something logs for the request — an error, a warning of a plugin.
 * Most requests log nothing but their access line, which the request-log plugin writes itself, so
 * most requests never pay for a pino child (bindings serialised, a new logger object per request).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, LevelWithSilentOrString } from 'pino';

/** The request's logger: every call goes to a child of `parent` made on first use. */
class LazyChildLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get real(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  get level(): LevelWithSilentOrString {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.real.level = level;
  }

  isLevelEnabled(level: LevelWithSilentOrString): boolean {
    const real = (this.made ?? (this.options.level === undefined ? this.parent : this.real)) as FastifyBaseLogger & { isLevelEnabled?(level: string): boolean };
    return real.isLevelEnabled?.(level) ?? true;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }

  fatal(...args: unknown[]): void {
    this.call('fatal', args);
  }

  error(...args: unknown[]): void {
    this.call('error', args);
  }

  warn(...args: unknown[]): void {
    this.call('warn', args);
  }

  info(...args: unknown[]): void {
    this.call('info', args);
  }

  debug(...args: unknown[]): void {
    this.call('debug', args);
  }

  trace(...args: unknown[]): void {
    this.call('trace', args);
  }

  silent(): void {}

  private call(level: Level, args: unknown[]): void {
    // a call at a level that is off writes nothing: no child is made for it
    if (this.made === undefined && this.options.level === undefined && !this.isLevelEnabled(level)) return;
    const real = this.real as unknown as Record<Level, (...a: unknown[]) => void>;
    real[level](...args);
  }
}

export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options);
}
