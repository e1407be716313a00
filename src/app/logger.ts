/** The mirror's pino logger: JSON lines on a buffered stdout, secrets removed by path and by pattern. */
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';

export const CENSOR = '[redacted]';

/**
 * Paths pino masks in every log line (structured fields): credentials never reach a log. A second,
 * pattern-based pass over each finished line (`redactSecrets`) catches token-like strings anywhere else.
 */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["proxy-authorization"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'config.cache.secret',
  'config.cache.redis.password',
  'config.cache.redis.sentinelPassword',
  'credential',
  '*.credential',
  'password',
  '*.password',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'secret',
  '*.secret',
];

/** JSON string fields whose value is always a secret, wherever they are nested. */
const SECRET_FIELD =
  /("(?:authorization|proxy-authorization|cookie|set-cookie|credential|password|passwd|secret|client_secret|token|access_token|refresh_token|private_key)"\s*:\s*")(?:[^"\\]|\\.)*"/gi;
/**
 * Authorization schemes followed by their credential ("token X", "Bearer X", "Basic X"). The credential
 * must look like one (20+ characters, or 6+ with a digit or '='), so "token validation failed" stays readable.
 */
const SCHEME = /\b(token|bearer|basic)(\s+|%20|\+|[=:]\s*)(?!\[redacted\])(?=[^\s"'\\,;&)]{20}|[^\s"'\\,;&)]*[0-9=])[^\s"'\\,;&)]{6,}/gi;
/** GitHub token formats: ghp_ gho_ ghu_ ghs_ ghr_, github_pat_, v1.<40 hex> installation tokens. */
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|v1\.[0-9a-f]{40})\b/g;
/** JSON Web Tokens (GitHub App JWTs). */
const JWT = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g;
/** Secret query parameters (and the same names as form fields). */
const QUERY_SECRET = /([?&;](?:access_token|token|refresh_token|client_secret|password|sig|signature|jwt)=)[^&#\s"\\]*/gi;
/** user:password@ in URLs (redis://:pw@host, https://x:y@host). */
const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s"@]*:[^/\s"@]*@/gi;
/** Cheap pre-check: a line without any of these words holds nothing the patterns above would change. */
const SUSPECT = /token|bearer|basic|gh[pousr]_|github_pat_|v1\.|eyJ|[?&;](?:sig|jwt|password|client_secret)=|signature|@|authorization|cookie|credential|passw|secret|private_key/i;

/** `text` with every token-like part replaced by [redacted]. Safe on JSON text (never removes a quote). */
export function redactSecrets(text: string): string {
  if (!SUSPECT.test(text)) return text;
  return text
    .replace(SECRET_FIELD, `$1${CENSOR}"`)
    .replace(SCHEME, `$1$2${CENSOR}`)
    .replace(GITHUB_TOKEN, CENSOR)
    .replace(JWT, CENSOR)
    .replace(QUERY_SECRET, `$1${CENSOR}`)
    .replace(USERINFO, `$1${CENSOR}@`);
}

/**
 * Characters of log lines gathered before one write to stdout: at ~350 characters an access line,
 * one write(2) per ~180 answers (a write costs tens of µs on these VMs; 4 KiB was one per 12).
 */
const STDOUT_BUFFER_CHARS = 64 * 1024;
/** Longest a line waits in that buffer. */
const STDOUT_FLUSH_MS = 250;

/**
 * The process's stdout as every logger without a destination of its own writes it: lines gathered
 * up to STDOUT_BUFFER_CHARS (or STDOUT_FLUSH_MS) and written with one synchronous write, instead of
 * one write(2) per line — the access log writes a line per request. What is still buffered when the
 * process exits (process.exit, the end of the event loop, an uncaught exception) is written then.
 * A full pipe (EAGAIN) is waited out; a stdout nobody reads any more (EPIPE) drops the lines.
 */
export class BufferedStdout implements DestinationStream {
  private parts: Array<string | (() => string)> = [];
  private chars = 0;
  private gone = false;

  constructor(private readonly fd: number) {
    setInterval(() => this.flushSync(), STDOUT_FLUSH_MS).unref();
    process.on('exit', () => this.flushSync());
  }

  write(line: string): void {
    if (this.gone) return;
    this.parts.push(line);
    this.chars += line.length;
    if (this.chars >= STDOUT_BUFFER_CHARS) this.flushSync();
  }

  /**
   * A line made when it is written out (with the lines around it, in order), not now: the access
   * log's lines are assembled in one go at each write, where a line per answer, made while the
   * answer is sent, cost several times more (measured: ~28 µs an answer against ~5 alone).
   * `render` must not throw and must give the line it would have given now.
   */
  writeLater(render: () => string, approxChars: number): void {
    if (this.gone) return;
    this.parts.push(render);
    this.chars += approxChars;
    if (this.chars >= STDOUT_BUFFER_CHARS) this.flushSync();
  }

  /** pino's logger.flush(). */
  flush(done?: (error?: Error) => void): void {
    this.flushSync();
    done?.();
  }

  flushSync(): void {
    if (this.parts.length === 0) return;
    let text = '';
    for (const part of this.parts) text += typeof part === 'string' ? part : rendered(part);
    const data = Buffer.from(text);
    this.parts = [];
    this.chars = 0;
    let offset = 0;
    while (offset < data.length && !this.gone) {
      try {
        offset += writeSync(this.fd, data, offset);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EAGAIN') Atomics.wait(PAUSE, 0, 0, 10);
        else this.gone = code === 'EPIPE' || this.gone;
        if (code !== 'EAGAIN' && code !== 'EPIPE') return; // this batch is lost; the next one tries again
      }
    }
  }
}

/** A deferred line; one that cannot be made is left out (a flush never throws: it runs from timers and at exit). */
function rendered(render: () => string): string {
  try {
    return render();
  } catch {
    return '';
  }
}

/** A cell to sleep on (Atomics.wait) while a full stdout pipe drains. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

let stdout: BufferedStdout | undefined;

function stdoutDestination(): BufferedStdout {
  stdout ??= new BufferedStdout(1);
  return stdout;
}

/**
 * The mirror's logger: JSON lines, ISO time, `service: github-mirror`. Secrets are removed twice:
 * by path (REDACT_PATHS) before serialising, and by pattern (redactSecrets) on every finished line,
 * so a token inside a message, an error, a URL or a nested field never reaches the output.
 * Without a destination it writes to the process's buffered stdout (stdoutDestination); `flush()`
 * writes what is buffered.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'github-mirror' },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: { streamWrite: redactSecrets },
  };
  return pino(options, destination ?? stdoutDestination());
}
