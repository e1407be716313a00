/**
 * Real Redis for adapter tests: `redis-server` processes on free loopback ports (never 6379), no
 * persistence, one temp dir each. A standalone server, a Sentinel set (1 master, 1 replica,
 * 3 sentinels) and a cluster (3 masters + 3 replicas) made with `redis-cli --cluster create`.
 *
 * With MIRROR_TEST_REDIS=container, `startRedis` runs the server in a container through
 * @testcontainers/redis instead (Docker needed). Sentinel and cluster always use local binaries.
 *
 * Every process is SIGKILLed by `stop()`; test files call it in `test.after.always`. As a last
 * resort every process still alive when the worker exits is killed too.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REDIS_SERVER_BIN = process.env.MIRROR_REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
export const REDIS_CLI_BIN = process.env.MIRROR_REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
const HOST = '127.0.0.1';
const FORBIDDEN_PORT = 6379;

export interface HostPort {
  host: string;
  port: number;
}

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. ['--replicaof', '127.0.0.1', '7001']. */
  args?: string[];
  /** requirepass (and the `default` user's password). */
  password?: string;
  /** Start as a replica of this server. */
  replicaOf?: HostPort;
  /** Run `redis-server --sentinel` with this config body (without `port`/`dir`/`logfile`). */
  sentinelConfig?: string;
  /** Cluster node: `--cluster-enabled yes` with this node timeout; the bus port (port + 10000) is free. */
  clusterNodeTimeoutMs?: number;
  /** How long to wait for the first PONG (default 10 s). */
  startTimeoutMs?: number;
}

export interface RedisProcess {
  readonly host: string;
  readonly port: number;
  /** redis://[:password@]127.0.0.1:port */
  readonly url: string;
  /** Process id (-1 for a container). */
  readonly pid: number;
  readonly alive: boolean;
  /** Send a signal (default SIGKILL). Does not wait for the exit. */
  kill(signal?: NodeJS.Signals): void;
  /** Kill and remove the temp dir; idempotent. */
  stop(): Promise<void>;
  /** Start again on the same port (kills it first when still running) and wait for PONG. */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Run one command through redis-cli and return its raw output (trimmed). */
  cli(...args: string[]): Promise<string>;
  /** Resolves when the process has exited (immediately when it is not running). */
  exited(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGCONT');
          c.kill('SIGKILL');
        } catch {
          // the process is already gone: nothing left to clean up at exit
          continue;
        }
      }
    });
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A free loopback port (never 6379). With `withBusPort`, port + 10000 is free as well (cluster bus). */
export async function freePort(options: { withBusPort?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    let port: number;
    if (options.withBusPort) {
      port = 20000 + Math.floor(Math.random() * 25000);
    } else {
      port = await new Promise<number>((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, HOST, () => {
          const address = server.address();
          const p = typeof address === 'object' && address !== null ? address.port : 0;
          server.close(() => resolve(p));
        });
      });
    }
    if (port === FORBIDDEN_PORT || port === 0) continue;
    if (options.withBusPort) {
      if (port + 10000 > 65535) continue;
      if (!(await canBind(port)) || !(await canBind(port + 10000))) continue;
    }
    return port;
  }
  throw new Error('redis-harness: no free port found');
}

/** Send commands over a raw socket and return the first reply line of the last one. */
function rawCommand(port: number, commands: string[][], timeoutMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: HOST });
    let data = '';
    let replies = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.on('connect', () => {
      for (const args of commands) {
        socket.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const lines = data.split('\r\n');
      // each command here answers one simple line (+OK, +PONG, -ERR ...)
      replies = lines.length - 1;
      if (replies >= commands.length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(lines[commands.length - 1] ?? '');
      }
    });
  });
}

async function waitUntilPong(port: number, password: string | undefined, timeoutMs: number, isAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`redis-harness: process on port ${port} exited during start-up (${last})`);
    try {
      const commands = password === undefined ? [['PING']] : [['AUTH', password], ['PING']];
      last = await rawCommand(port, commands);
      if (last === '+PONG') return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(25);
  }
  throw new Error(`redis-harness: no PONG from port ${port} within ${timeoutMs} ms (${last})`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `check` until it returns true (or throw after `timeoutMs`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs);
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`redis-harness: timed out waiting for ${what}${detail}`);
}

class LocalRedis implements RedisProcess {
  readonly host = HOST;
  private child: ChildProcess | undefined;
  private exitPromise: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly argv: string[],
    private readonly password: string | undefined,
    private readonly startTimeoutMs: number,
  ) {}

  get url(): string {
    return this.password === undefined
      ? `redis://${HOST}:${this.port}`
      : `redis://:${encodeURIComponent(this.password)}@${HOST}:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async launch(): Promise<void> {
    const child = spawn(REDIS_SERVER_BIN, this.argv, { stdio: 'ignore', cwd: this.dir });
    this.child = child;
    trackChild(child);
    this.exitPromise = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.once('error', () => undefined);
    await waitUntilPong(this.port, this.password, this.startTimeoutMs, () => this.alive);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.alive || this.child === undefined) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.child.kill('SIGCONT');
    this.child.kill(signal);
  }

  pause(): void {
    this.kill('SIGSTOP');
  }

  resume(): void {
    this.kill('SIGCONT');
  }

  exited(): Promise<void> {
    return this.exitPromise;
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error('redis-harness: restart after stop');
    if (this.alive) {
      this.kill('SIGKILL');
      await this.exitPromise;
    }
    await this.launch();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.kill('SIGKILL');
    await this.exitPromise;
    await rm(this.dir, { recursive: true, force: true });
  }

  async cli(...args: string[]): Promise<string> {
    const auth = this.password === undefined ? [] : ['--no-auth-warning', '-a', this.password];
    const { stdout } = await execFileAsync(REDIS_CLI_BIN, ['-h', HOST, '-p', String(this.port), ...auth, ...args], {
      timeout: 30000,
    });
    return stdout.trim();
  }

  /** The server's log (for failure messages). */
  logFile(): string {
    return path.join(this.dir, 'redis.log');
  }
}

async function startLocal(options: StartRedisOptions): Promise<LocalRedis> {
  let lastError: unknown;
  // a free port can be taken between the probe and the bind: retry with another one
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort({ withBusPort: options.clusterNodeTimeoutMs !== undefined });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mirror-redis-'));
    const logfile = path.join(dir, 'redis.log');
    let argv: string[];
    if (options.sentinelConfig !== undefined) {
      const conf = path.join(dir, 'sentinel.conf');
      await writeFile(
        conf,
        [`port ${port}`, `bind ${HOST}`, `dir ${dir}`, `logfile ${logfile}`, 'protected-mode no', options.sentinelConfig, ''].join('\n'),
      );
      argv = [conf, '--sentinel'];
    } else {
      argv = [
        '--port', String(port),
        '--bind', HOST,
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--logfile', logfile,
        '--daemonize', 'no',
        '--enable-debug-command', 'local',
        // replicas sync at once (the default waits 5 s for more replicas to share one transfer)
        '--repl-diskless-sync-delay', '0',
      ];
      if (options.password !== undefined) argv.push('--requirepass', options.password, '--masterauth', options.password);
      if (options.replicaOf !== undefined) argv.push('--replicaof', options.replicaOf.host, String(options.replicaOf.port));
      if (options.clusterNodeTimeoutMs !== undefined) {
        argv.push(
          '--cluster-enabled', 'yes',
          '--cluster-config-file', path.join(dir, 'nodes.conf'),
          '--cluster-node-timeout', String(options.clusterNodeTimeoutMs),
          // a replica takes over whatever its last contact with the master
          '--cluster-replica-validity-factor', '0',
        );
      }
      argv.push(...(options.args ?? []));
    }
    const redis = new LocalRedis(port, dir, argv, options.password, options.startTimeoutMs ?? 10000);
    try {
      await redis.launch();
      return redis;
    } catch (err) {
      lastError = err;
      await redis.stop();
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** One Redis server (a local process, or a container with MIRROR_TEST_REDIS=container). */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisProcess> {
  if (process.env.MIRROR_TEST_REDIS === 'container' && options.sentinelConfig === undefined && options.clusterNodeTimeoutMs === undefined) {
    return startContainerRedis(options);
  }
  return startLocal(options);
}

// ---------------------------------------------------------------------------------------------
// Container mode (@testcontainers/redis). Not runnable without Docker; kept typed and complete.

class ContainerRedis implements RedisProcess {
  readonly host = HOST;
  readonly pid = -1;
  private running = true;
  private stopped = false;

  constructor(
    readonly port: number,
    private readonly started: import('@testcontainers/redis').StartedRedisContainer,
    private readonly password: string | undefined,
  ) {}

  get url(): string {
    return this.password === undefined
      ? `redis://${HOST}:${this.port}`
      : `redis://:${encodeURIComponent(this.password)}@${HOST}:${this.port}`;
  }

  get alive(): boolean {
    return this.running;
  }

  private async docker(): Promise<import('dockerode').Container> {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const client = await getContainerRuntimeClient();
    return client.container.getById(this.started.getId());
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (signal === 'SIGSTOP') return this.pause();
    if (signal === 'SIGCONT') return this.resume();
    this.running = false;
    void this.docker().then((c) => c.kill({ signal })).catch(() => undefined);
  }

  pause(): void {
    void this.docker().then((c) => c.pause()).catch(() => undefined);
  }

  resume(): void {
    void this.docker().then((c) => c.unpause()).catch(() => undefined);
  }

  async exited(): Promise<void> {
    const c = await this.docker();
    await waitFor('container exit', async () => !(await c.inspect()).State.Running, 15000);
  }

  async restart(): Promise<void> {
    const c = await this.docker();
    const state = (await c.inspect()).State;
    if (state.Paused) await c.unpause();
    if (state.Running) await c.kill({ signal: 'SIGKILL' });
    await this.exited();
    await c.start();
    this.running = true;
    await waitUntilPong(this.port, this.password, 30000, () => true);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    await this.started.stop({ timeout: 0 });
  }

  async cli(...args: string[]): Promise<string> {
    return (await this.started.executeCliCmd(args[0] ?? 'PING', args.slice(1))).trim();
  }
}

async function startContainerRedis(options: StartRedisOptions): Promise<RedisProcess> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const port = await freePort();
  let container = new RedisContainer(process.env.MIRROR_TEST_REDIS_IMAGE ?? 'redis:7.0')
    // a fixed host port, so a restarted container comes back where the client expects it
    .withExposedPorts({ container: 6379, host: port })
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes', ...(options.args ?? [])]);
  if (options.password !== undefined) container = container.withPassword(options.password);
  const started = await container.start();
  return new ContainerRedis(port, started, options.password);
}

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface SentinelSet {
  master: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** The monitored master's name. */
  name: string;
  sentinelAddrs: HostPort[];
  /** The port of the current master according to the first sentinel that answers. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  name?: string;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

export async function startSentinelSet(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const name = options.name ?? 'mirror';
  const downAfter = options.downAfterMs ?? 1000;
  const failoverTimeout = options.failoverTimeoutMs ?? 3000;
  const started: RedisProcess[] = [];
  try {
    const master = await startLocal({});
    started.push(master);
    const replica = await startLocal({ replicaOf: { host: HOST, port: master.port } });
    started.push(replica);
    await waitFor('replica in sync', async () => (await replica.cli('INFO', 'replication')).includes('master_link_status:up'));
    const sentinelConfig = [
      `sentinel monitor ${name} ${HOST} ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} ${downAfter}`,
      `sentinel failover-timeout ${name} ${failoverTimeout}`,
      `sentinel parallel-syncs ${name} 1`,
    ].join('\n');
    const sentinels = await Promise.all([0, 1, 2].map(() => startLocal({ sentinelConfig })));
    started.push(...sentinels);
    const set: SentinelSet = {
      master,
      replica,
      sentinels,
      name,
      sentinelAddrs: sentinels.map((s) => ({ host: HOST, port: s.port })),
      async currentMasterPort() {
        for (const s of sentinels) {
          if (!s.alive) continue;
          try {
            const out = await s.cli('SENTINEL', 'get-master-addr-by-name', name);
            const port = Number(out.split('\n')[1]);
            if (Number.isInteger(port) && port > 0) return port;
          } catch {
            // this sentinel is down or busy: ask the next one
            continue;
          }
        }
        throw new Error('redis-harness: no sentinel answered');
      },
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
    // every sentinel has found the replica and the other sentinels
    await waitFor('sentinels ready', async () => {
      for (const s of sentinels) {
        const out = await s.cli('SENTINEL', 'master', name);
        const fields = out.split('\n');
        const get = (key: string): number => Number(fields[fields.indexOf(key) + 1]);
        if (get('num-slaves') < 1 || get('num-other-sentinels') < 2) return false;
      }
      return true;
    }, 20000, 100);
    return set;
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface RedisClusterSet {
  /** Six nodes: three masters and three replicas (roles change after a failover). */
  nodes: RedisProcess[];
  startupNodes: HostPort[];
  /** Ports of the nodes that are masters now, according to the first node that answers. */
  masterPorts(): Promise<number[]>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodeTimeoutMs?: number;
}

/** Parse `CLUSTER NODES` into ports by role (only nodes not flagged fail). */
export function parseClusterNodes(out: string): { masters: number[]; replicas: number[] } {
  const masters: number[] = [];
  const replicas: number[] = [];
  for (const line of out.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length < 8) continue;
    const port = Number((parts[1] ?? '').split('@')[0]?.split(':')[1]);
    const flags = parts[2] ?? '';
    if (flags.includes('fail') && !flags.includes('fail?')) continue;
    if (flags.includes('master')) masters.push(port);
    else if (flags.includes('slave')) replicas.push(port);
  }
  return { masters, replicas };
}

export async function startCluster(options: ClusterOptions = {}): Promise<RedisClusterSet> {
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  const nodes: RedisProcess[] = [];
  try {
    nodes.push(...(await Promise.all([0, 1, 2, 3, 4, 5].map(() => startLocal({ clusterNodeTimeoutMs: nodeTimeout })))));
    await execFileAsync(
      REDIS_CLI_BIN,
      ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 60000 },
    );
    const set: RedisClusterSet = {
      nodes,
      startupNodes: nodes.map((n) => ({ host: HOST, port: n.port })),
      async masterPorts() {
        for (const n of nodes) {
          if (!n.alive) continue;
          try {
            return parseClusterNodes(await n.cli('CLUSTER', 'NODES')).masters.sort((a, b) => a - b);
          } catch {
            // this node is down: ask the next one
            continue;
          }
        }
        throw new Error('redis-harness: no cluster node answered');
      },
      async stop() {
        await Promise.all(nodes.map((n) => n.stop()));
      },
    };
    await waitFor('cluster ready', async () => {
      for (const n of nodes) {
        if (!(await n.cli('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      }
      const { masters, replicas } = parseClusterNodes(await nodes[0]!.cli('CLUSTER', 'NODES'));
      if (masters.length !== 3 || replicas.length !== 3) return false;
      // every replica has finished its first sync
      for (const n of nodes) {
        if (!replicas.includes(n.port)) continue;
        if (!(await n.cli('INFO', 'replication')).includes('master_link_status:up')) return false;
      }
      return true;
    }, 30000, 100);
    return set;
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
}
