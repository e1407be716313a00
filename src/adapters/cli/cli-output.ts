/**
 * Output of the operator CLI: results on stdout, progress and problems on stderr, sizes and ages the
 * way a person reads them.
 */
export const MB = 1024 * 1024;

export const say = (line: string): void => void process.stdout.write(`${line}\n`);
export const warn = (line: string): void => void process.stderr.write(`${line}\n`);

export function size(bytes: number): string {
  return bytes >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** Progress on stderr: one updating line on a terminal, a line every few seconds otherwise. */
export function progress(label: string): { update: (text: string) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  const every = tty ? 200 : 5000;
  let last = 0;
  let shown = false;
  const started = Date.now();
  return {
    update(text) {
      const now = Date.now();
      if (now - last < every) return;
      last = now;
      shown = true;
      const line = `${label}: ${text} (${((now - started) / 1000).toFixed(1)} s)`;
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    },
    done() {
      if (shown && tty) process.stderr.write('\n');
    },
  };
}
