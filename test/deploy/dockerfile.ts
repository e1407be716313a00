/**
 * Reads the project's Dockerfile and .dockerignore the way `docker build` does, far enough for the
 * tests to check them and to replay the runtime stage without a Docker engine.
 */
import { readFileSync } from 'node:fs';

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  text: string;
  line: number;
}

export interface CopyInstruction {
  from: string | undefined;
  sources: string[];
  dest: string;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  let current: { parts: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i += 1) {
    const raw = lines[i] ?? '';
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && current === undefined)) continue;
    const continued = /\\\s*$/.test(raw);
    const piece = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current === undefined) current = { parts: [], line: i + 1 };
    current.parts.push(piece.trim());
    if (!continued) {
      const joined = current.parts.filter((p) => p !== '').join(' ');
      const match = /^(\S+)\s*(.*)$/s.exec(joined);
      if (match?.[1]) out.push({ keyword: match[1].toUpperCase(), text: (match[2] ?? '').trim(), line: current.line });
      current = undefined;
    }
  }
  return out;
}

function substitute(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => args[a ?? b ?? ''] ?? '');
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions(text)) {
    if (instruction.keyword === 'ARG' && stages.length === 0) {
      const [name, value] = instruction.text.split('=', 2);
      if (name) globalArgs[name.trim()] = (value ?? '').trim();
      continue;
    }
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.text);
      if (!match?.[1]) throw new Error(`line ${instruction.line}: cannot read FROM ${instruction.text}`);
      stages.push({ image: substitute(match[1], globalArgs), name: match[2] ?? String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
    stage.instructions.push(instruction);
  }
  return { globalArgs, stages };
}

export function readDockerfile(path: string): Dockerfile {
  return parseDockerfile(readFileSync(path, 'utf8'));
}

/** The JSON (exec) form of CMD / ENTRYPOINT / HEALTHCHECK CMD; undefined for the shell form. */
export function execForm(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : undefined;
}

export function parseCopy(text: string): CopyInstruction {
  const words = text.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift() as string;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const rest = words.join(' ');
  const list = execForm(rest) ?? words;
  const dest = list.at(-1);
  if (dest === undefined || list.length < 2) throw new Error(`COPY needs a source and a destination: ${text}`);
  return { from, sources: list.slice(0, -1), dest };
}

export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const [, name, value] = match;
    if (name) out[name] = value?.startsWith('"') ? (JSON.parse(value) as string) : (value ?? '');
  }
  return out;
}

export interface Healthcheck {
  options: Record<string, string>;
  command: string[];
}

export function parseHealthcheck(text: string): Healthcheck {
  const options: Record<string, string> = {};
  let rest = text;
  for (;;) {
    const match = /^--([a-z-]+)=(\S+)\s+/.exec(rest);
    if (!match?.[1] || match[2] === undefined) break;
    options[match[1]] = match[2];
    rest = rest.slice(match[0].length);
  }
  const cmd = /^CMD\s+(.*)$/s.exec(rest);
  const command = cmd?.[1] !== undefined ? execForm(cmd[1].trim()) : undefined;
  if (command === undefined) throw new Error(`HEALTHCHECK without an exec-form CMD: ${text}`);
  return { options, command };
}

// ---------------------------------------------------------------------------------------------
// .dockerignore
// ---------------------------------------------------------------------------------------------

interface IgnoreRule {
  negate: boolean;
  pattern: RegExp;
}

function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches any number of directories, including none.
        if (glob[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) out += '\\[';
      else {
        out += glob.slice(i, end + 1).replace(/^\[!/, '[^');
        i = end;
      }
    } else {
      out += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = (negate ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, pattern: globToRegExp(pattern) };
    });
}

/** Whether a context-relative path (forward slashes) is left out of the build context. */
export function isIgnored(rules: IgnoreRule[], path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.negate;
  }
  return ignored;
}
