/**
 * Test helpers around Prometheus: parse the text exposition, run promtool, and start a real Prometheus
 * server (the Debian `prometheus` package; .ci/run installs it) on a free loopback port with a temporary
 * config and storage directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

// ---- the text exposition ------------------------------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (version 0.0.4) into samples; comments are skipped. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (match === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;
    let label: RegExpExecArray | null;
    while ((label = labelPattern.exec(body)) !== null) {
      labels[label[1] as string] = (label[2] as string).replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const raw = match[3] as string;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' || raw === 'Nan' ? NaN : Number(raw);
    samples.push({ name: match[1] as string, labels, value });
  }
  return samples;
}

/** Samples named `name` whose labels include every pair of `labels`. */
export function select(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the matching samples' values (0 when none match). */
export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return select(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** The single matching sample's value; undefined when there is none; throws when several match. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = select(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

// ---- binaries -----------------------------------------------------------------------------------

/** Path of a binary on PATH or in /usr/bin, or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The binary's path; throws a clear message when it is missing (the tests fail, never skip). */
export function requireBinary(name: 'prometheus' | 'promtool'): string {
  const path = findBinary(name);
  if (path === undefined) {
    throw new Error(
      `${name} not found on PATH or in /usr/bin: install the Debian package "prometheus" (apt-get install prometheus; .ci/run does it when missing)`,
    );
  }
  return path;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `args`, feeding `input` on stdin. */
export function promtool(args: string[], input?: string): RunResult {
  const result = spawnSync(requireBinary('promtool'), args, { input, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---- a Prometheus server ------------------------------------------------------------------------

export interface PrometheusOptions {
  /** host:port targets of the one scrape job. */
  targets: string[];
  job?: string;
  scrapeIntervalSeconds?: number;
  /** Absolute paths of rule files to load. */
  ruleFiles?: string[];
}

export interface PrometheusQueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string] }> | [number, string] };
}

export class PrometheusServer {
  private exited: Promise<void>;
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly dir: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Starts Prometheus and waits (bounded) until it answers /-/ready. */
  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const binary = requireBinary('prometheus');
    const dir = mkdtempSync(join(tmpdir(), 'github-mirror-prometheus-'));
    const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
    const config = [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      ...(options.ruleFiles && options.ruleFiles.length > 0 ? ['rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
      'scrape_configs:',
      `  - job_name: ${JSON.stringify(options.job ?? 'github-mirror')}`,
      `    scrape_interval: ${interval}`,
      `    scrape_timeout: ${interval}`,
      '    static_configs:',
      `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const child = spawn(
        binary,
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--storage.tsdb.retention.time=1h',
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
      );
      const server = new PrometheusServer(child, `http://127.0.0.1:${port}`, dir);
      try {
        await server.waitReady(30_000);
        return server;
      } catch (error) {
        lastError = error;
        await server.stop(false);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** Last lines Prometheus wrote (for failure messages). */
  get log(): string {
    return this.output;
  }

  async query(expr: string): Promise<PrometheusQueryResult> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as PrometheusQueryResult;
  }

  async get(path: string): Promise<unknown> {
    const response = await fetch(`${this.url}${path}`);
    return response.json();
  }

  /** Polls `probe` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
  async poll<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    throw new Error(`Prometheus: condition not met within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}\n${this.output}`);
  }

  /** SIGTERM, then SIGKILL after 5 s; removes the temporary directory. */
  async stop(removeDir = true): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(killer);
    }
    if (removeDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`prometheus exited with ${this.child.exitCode}:\n${this.output}`);
      try {
        const response = await fetch(`${this.url}/-/ready`);
        await response.text();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`prometheus not ready within ${timeoutMs} ms:\n${this.output}`);
  }
}
