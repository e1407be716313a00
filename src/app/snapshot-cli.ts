/**
 * Operator CLI for cache snapshots (docs/snapshots.md): `npm run snapshot -- ...` in a checkout,
 * `node dist/app/snapshot-cli.js ...` in the container image. Reads the mirror's configuration the way the
 * mirror does (config/*.json, --config FILE, MIRROR_* variables), so it sees the same store and cache.
 *
 *   npm run snapshot -- list
 *   npm run snapshot -- inspect [ID|latest|FILE]
 *   npm run snapshot -- export [ID|latest|live] [--out FILE]
 *   npm run snapshot -- import [ID|latest|FILE] [--to-store] [--force]
 *
 * export live      snapshot the live Redis cache now into the store (and into FILE with --out)
 * export ID        copy a stored snapshot into FILE (verified after the copy)
 * import ID|FILE   load a snapshot into the live Redis cache: absent keys only, expired entries skipped
 * import FILE --to-store
 *                  verify a snapshot file and add it to the store (mirrors restore it when their cache
 *                  is empty at start; the way to seed memory-backed mirrors)
 *
 * Exit status: 0 done, 1 failed (the reason on stderr), 2 usage.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, ConfigError, type MirrorConfig } from './config.js';
import { createLogger } from './logger.js';
import { buildSnapshotStore, createSnapshotRedisClient, RESTORE_LEASE } from './snapshot-service.js';
import { RedisCacheDump } from '../adapters/cache/redis/redis-dump.adapter.js';
import { RedisLease } from '../adapters/lease/redis-lease.adapter.js';
import { SnapshotDecoder } from '../adapters/snapshot/snapshot-format.js';
import { SnapshotFileSource } from '../adapters/snapshot/snapshot-file-source.adapter.js';
import type { BlobSnapshotStore } from '../adapters/snapshot/blob-snapshot-store.adapter.js';
import { TakeSnapshot } from '../domain/use-cases/take-snapshot.js';
import { RestoreSnapshot } from '../domain/use-cases/restore-snapshot.js';
import { systemClock } from '../adapters/clock/system-clock.adapter.js';
import type { SnapshotStorePort } from '../domain/ports/snapshot-store.port.js';

const USAGE = `usage: npm run snapshot -- <command> [arguments]     (image: node dist/app/snapshot-cli.js <command> ...)

  list                                  snapshots in the configured store, newest first
  inspect [ID|latest|FILE]              read and verify a whole snapshot; print what it holds
  export live [--out FILE]              snapshot the live Redis cache now (into the store; and FILE)
  export [ID|latest] --out FILE         copy a stored snapshot into a local file
  import [ID|latest|FILE] [--force]     load a snapshot into the live Redis cache (absent keys only)
  import FILE --to-store                add a snapshot file to the store (mirrors restore it at start)

The store and the cache come from the mirror's configuration (MIRROR_* variables, --config FILE).`;

class UsageError extends Error {}

interface Args {
  command: string;
  target: string | undefined;
  out: string | undefined;
  toStore: boolean;
  force: boolean;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  let out: string | undefined;
  let toStore = false;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') {
      out = argv[++i];
      if (out === undefined) throw new UsageError('--out needs a file');
    } else if (a.startsWith('--out=')) out = a.slice(6);
    else if (a === '--to-store') toStore = true;
    else if (a === '--force') force = true;
    else if (a === '--config') i++;
    else if (a.startsWith('--config=')) continue;
    else if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  const [command, target, extra] = positional;
  if (command === undefined) throw new UsageError('');
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`);
  return { command, target, out, toStore, force };
}

// ---- output -------------------------------------------------------------------------------------

const MB = 1024 * 1024;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const warn = (line: string): void => void process.stderr.write(`${line}\n`);

function size(bytes: number): string {
  return bytes >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** Progress on stderr: one updating line on a terminal, a line every few seconds otherwise. */
function progress(label: string): { update: (text: string) => void; done: () => void } {
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

// ---- wiring -------------------------------------------------------------------------------------

function storeOf(config: MirrorConfig): BlobSnapshotStore {
  const store = buildSnapshotStore(config, createLogger('warn'), { writer: 'github-mirror snapshot-cli' });
  if (store === undefined) throw new Error('snapshot.store is none: set MIRROR_SNAPSHOT_STORE=file or s3 (and its settings)');
  return store;
}

function isFile(target: string | undefined): target is string {
  return target !== undefined && existsSync(target) && statSync(target).isFile();
}

async function resolveId(store: SnapshotStorePort, target: string | undefined): Promise<string> {
  if (target !== undefined && target !== 'latest') return target;
  const newest = (await store.list()).find((s) => s.problem === undefined);
  if (newest === undefined) throw new Error(`no snapshot in the store`);
  return newest.id;
}

async function withRedis<T>(config: MirrorConfig, work: (dump: RedisCacheDump, lease: RedisLease) => Promise<T>): Promise<T> {
  if (config.cache.backend !== 'redis') {
    throw new Error(
      'the live cache is the memory backend: it lives inside each mirror process. Use "import FILE --to-store" to add a snapshot that mirrors restore when they start.',
    );
  }
  const client = createSnapshotRedisClient(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const keyPrefix = config.cache.redis.keyPrefix;
    return await work(new RedisCacheDump({ client, keyPrefix, defaultTtlMs: config.cache.ttlSeconds * 1000 }), new RedisLease({ client, keyPrefix }));
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

// ---- commands -----------------------------------------------------------------------------------

async function list(config: MirrorConfig): Promise<number> {
  const store = storeOf(config);
  try {
    const snapshots = await store.list();
    say(`${snapshots.length} snapshot(s) in ${store.location}`);
    if (snapshots.length === 0) return 0;
    say(['ID'.padEnd(30), 'TAKEN AT'.padEnd(24), 'AGE'.padStart(5), 'ENTRIES'.padStart(9), 'SIZE'.padStart(10), ' FROM'].join(' '));
    for (const s of snapshots) {
      const when = s.takenAt > 0 ? new Date(s.takenAt).toISOString() : '?';
      const row = [s.id.padEnd(30), when.padEnd(24), age(Date.now() - s.takenAt).padStart(5), String(s.entries).padStart(9), size(s.bytes).padStart(10), ` ${s.backend || '?'}`];
      say(row.join(' ') + (s.problem ? `  UNUSABLE: ${s.problem}` : ''));
    }
    return 0;
  } finally {
    store.close();
  }
}

async function inspect(config: MirrorConfig, target: string | undefined): Promise<number> {
  let source: AsyncIterable<Uint8Array>;
  let label: string;
  let store: BlobSnapshotStore | undefined;
  if (isFile(target)) {
    source = createReadStream(target, { highWaterMark: MB });
    label = resolve(target);
  } else {
    store = storeOf(config);
    const id = await resolveId(store, target);
    source = await store.readData(id);
    label = `${id} in ${store.location}`;
  }
  const decoder = new SnapshotDecoder(source);
  const bar = progress('verifying');
  try {
    const header = await decoder.header();
    let expired = 0;
    let soonest = Infinity;
    const age = Date.now() - header.takenAt;
    for await (const batch of decoder.batches()) {
      for (const e of batch) {
        if (e.ttlMs - age <= 0) expired++;
        else soonest = Math.min(soonest, e.ttlMs - age);
      }
      bar.update(`${decoder.stats.entries} entries, ${size(decoder.stats.bytes)}`);
    }
    bar.done();
    const t = decoder.trailer!;
    say(`snapshot    ${header.id}  (${label})`);
    say(`taken at    ${new Date(header.takenAt).toISOString()} (${age >= 0 ? `${Math.round(age / 1000)} s ago` : 'in the future: clock skew'})`);
    say(`from        ${header.backend} cache, entries in format ${header.entryFormat}, written by ${header.writer || '?'}`);
    say(`format      version ${header.formatVersion}, ${header.compression}, ${t.blocks} blocks`);
    say(`entries     ${t.entries} (${t.entries - expired} still live now, ${expired} expired)`);
    say(`size        ${size(decoder.stats.bytes)} stored, ${size(t.payloadBytes)} of entries`);
    say(`sha-256     ${decoder.sha256}`);
    say('verdict     OK: every block and the whole-stream checksum verified');
    return 0;
  } catch (error) {
    bar.done();
    warn(`snapshot ${label} is NOT usable: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await decoder.close();
    store?.close();
  }
}

/** Copies a byte stream into `out` atomically (temporary file, then rename). */
async function writeFileAtomically(out: string, source: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): Promise<number> {
  const target = resolve(out);
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  const handle = await open(temp, 'w', 0o640);
  let written = 0;
  try {
    for await (const chunk of source) {
      await handle.write(chunk);
      written += chunk.byteLength;
      onBytes(written);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  await rename(temp, target);
  return written;
}

async function exportSnapshot(config: MirrorConfig, target: string | undefined, out: string | undefined): Promise<number> {
  const store = storeOf(config);
  try {
    let id: string;
    if (target === 'live') {
      const bar = progress('snapshot of the live cache');
      const result = await withRedis(config, (dump) =>
        new TakeSnapshot(dump, store, { emit: () => undefined }, systemClock, { retain: config.snapshot.retain }).execute({
          onProgress: (p) => bar.update(`${p.entries} entries, ${size(p.payloadBytes)}`),
        }),
      );
      bar.done();
      if (result.outcome !== 'ok') {
        warn(`snapshot ${result.outcome}: ${result.reason}`);
        return 1;
      }
      id = result.info.id;
      say(`snapshot ${id}: ${result.info.entries} entries, ${size(result.info.bytes)} in ${store.location} (${(result.durationMs / 1000).toFixed(1)} s)`);
      if (out === undefined) return 0;
    } else {
      if (out === undefined) throw new UsageError('export of a stored snapshot needs --out FILE');
      id = await resolveId(store, target);
    }
    const bar = progress(`copying ${id}`);
    const bytes = await writeFileAtomically(out, await store.readData(id), (n) => bar.update(size(n)));
    bar.done();
    say(`wrote ${resolve(out)} (${size(bytes)}); verifying ...`);
    return inspect(config, out);
  } finally {
    store.close();
  }
}

async function importSnapshot(config: MirrorConfig, args: Args): Promise<number> {
  if (args.toStore) {
    if (!isFile(args.target)) throw new UsageError('import --to-store needs a snapshot FILE');
    const file = args.target;
    const store = storeOf(config);
    try {
      const info = await store.importData(() => Promise.resolve(createReadStream(file, { highWaterMark: MB })));
      say(`added snapshot ${info.id} (${info.entries} entries, ${size(info.bytes)}) to ${store.location}`);
      say('mirrors restore it when they start with an empty cache, if it is the newest snapshot there');
      return 0;
    } finally {
      store.close();
    }
  }

  const fromFile = isFile(args.target);
  const store: SnapshotStorePort & { close?: () => void } = fromFile ? new SnapshotFileSource(args.target!) : storeOf(config);
  try {
    const snapshotId = fromFile || (args.target !== undefined && args.target !== 'latest') ? await resolveId(store, fromFile ? (await store.list())[0]?.id : args.target) : undefined;
    return await withRedis(config, async (dump, lease) => {
      const held = await lease.acquire(RESTORE_LEASE, 60_000);
      if (!held && !args.force) {
        warn('a mirror replica is restoring the cache right now (restore lease held); wait, or use --force');
        return 1;
      }
      const renew = setInterval(() => void lease.renew(RESTORE_LEASE, 60_000).catch(() => undefined), 20_000);
      const bar = progress('restoring into the live cache');
      try {
        const result = await new RestoreSnapshot(dump, store, { emit: () => undefined }, systemClock).execute({
          ...(snapshotId === undefined ? {} : { snapshotId }),
          onProgress: (p) =>
            bar.update(`${p.entries}${p.total > 0 ? `/${p.total}` : ''} entries read, ${p.restored} written, ${p.present} already present, ${p.expired} expired`),
          onRejected: (r) => warn(`\nsnapshot ${r.snapshotId} rejected (${r.reason}): ${r.message}${snapshotId === undefined ? '; trying the next older one' : ''}`),
        });
        bar.done();
        if (result.outcome !== 'ok') {
          warn(`restore ${result.outcome}: ${result.reason}`);
          return 1;
        }
        say(
          `restored snapshot ${result.snapshotId}: ${result.restored} entries written, ${result.present} already present (kept), ` +
            `${result.expired} expired (skipped), in ${(result.durationMs / 1000).toFixed(1)} s`,
        );
        return 0;
      } finally {
        clearInterval(renew);
        if (held) await lease.release(RESTORE_LEASE).catch(() => undefined);
      }
    });
  } finally {
    store.close?.();
  }
}

/** Runs one CLI command; resolves to the exit status. */
export async function runSnapshotCli(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      if (error.message) warn(error.message);
      warn(USAGE);
      return 2;
    }
    throw error;
  }
  let config: MirrorConfig;
  try {
    config = loadConfig({ args: argv });
  } catch (error) {
    if (error instanceof ConfigError) {
      warn(`invalid configuration\n${error.message}`);
      return 2;
    }
    throw error;
  }
  try {
    switch (args.command) {
      case 'list':
        return await list(config);
      case 'inspect':
        return await inspect(config, args.target);
      case 'export':
        return await exportSnapshot(config, args.target, args.out);
      case 'import':
        return await importSnapshot(config, args);
      default:
        throw new UsageError(`unknown command ${args.command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      warn(error.message);
      warn(USAGE);
      return 2;
    }
    warn(`snapshot ${args.command} failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

/** `node dist/app/snapshot-cli.js <command>` (the container image), or via scripts/snapshot-cli.ts. */
export function runAsProcess(argv: string[] = process.argv.slice(2)): void {
  runSnapshotCli(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      warn(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 1;
    },
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) runAsProcess();
