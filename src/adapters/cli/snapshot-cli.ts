/**
 * Operator CLI for cache snapshots (docs/snapshots.md), a driving adapter: it parses the command line,
 * runs the snapshot use cases and prints. What it works on (the configured store, the live cache and
 * its lease) comes from src/app/snapshot-cli.ts, the entry that reads the mirror's configuration
 * (config/*.json, --config FILE, MIRROR_* variables): `npm run snapshot -- ...` in a checkout,
 * `node dist/app/snapshot-cli.js ...` in the container image.
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
import { SnapshotDecoder } from '../snapshot/snapshot-format.js';
import { SnapshotFileSource } from '../snapshot/snapshot-file-source.adapter.js';
import type { BlobSnapshotStore } from '../snapshot/blob-snapshot-store.adapter.js';
import { TakeSnapshot } from '../../domain/use-cases/take-snapshot.js';
import { RestoreSnapshot } from '../../domain/use-cases/restore-snapshot.js';
import { RESTORE_LEASE } from '../../domain/use-cases/restore-when-lost.js';
import { holdLease } from '../../domain/use-cases/hold-lease.js';
import type { SnapshotStorePort } from '../../domain/ports/snapshot-store.port.js';
import type { CacheDumpPort } from '../../domain/ports/cache-dump.port.js';
import type { LeasePort } from '../../domain/ports/lease.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { MB, age, progress, say, size, warn } from './cli-output.js';

const USAGE = `usage: npm run snapshot -- <command> [arguments]     (image: node dist/app/snapshot-cli.js <command> ...)

  list                                  snapshots in the configured store, newest first
  inspect [ID|latest|FILE]              read and verify a whole snapshot; print what it holds
  export live [--out FILE]              snapshot the live Redis cache now (into the store; and FILE)
  export [ID|latest] --out FILE         copy a stored snapshot into a local file
  import [ID|latest|FILE] [--force]     load a snapshot into the live Redis cache (absent keys only)
  import FILE --to-store                add a snapshot file to the store (mirrors restore it at start)

The store and the cache come from the mirror's configuration (MIRROR_* variables, --config FILE).`;

class UsageError extends Error {}

/** The configuration could not be read: its message is printed, exit status 2. */
export class CliSetupError extends Error {}

/** What the commands work on, built by the entry from the mirror's configuration. */
export interface SnapshotCliContext {
  /** snapshot.retain: snapshots kept after `export live`. */
  retain: number;
  clock: ClockPort;
  /** The configured snapshot store (throws when snapshot.store is none); close() it after use. */
  openStore(): BlobSnapshotStore;
  /** Runs `work` on the live shared cache and its lease, then closes the connection (throws when the cache is not shared). */
  withLiveCache<T>(work: (dump: CacheDumpPort, lease: LeasePort) => Promise<T>): Promise<T>;
}

/** The operator restore's hold on the restore lease, renewed every third of it (a mirror's own takes 30 s). */
const CLI_RESTORE_LEASE_MS = 60_000;

/** The CLI reports through its own output, not through events. */
const noEvents: EventBusPort = { emit: () => undefined };

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

// ---- helpers ------------------------------------------------------------------------------------

function isFile(target: string | undefined): target is string {
  return target !== undefined && existsSync(target) && statSync(target).isFile();
}

async function resolveId(store: SnapshotStorePort, target: string | undefined): Promise<string> {
  if (target !== undefined && target !== 'latest') return target;
  const newest = (await store.list()).find((s) => s.problem === undefined);
  if (newest === undefined) throw new Error(`no snapshot in the store`);
  return newest.id;
}

// ---- commands -----------------------------------------------------------------------------------

async function list(cli: SnapshotCliContext): Promise<number> {
  const store = cli.openStore();
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

async function inspect(cli: SnapshotCliContext, target: string | undefined): Promise<number> {
  let source: AsyncIterable<Uint8Array>;
  let label: string;
  let store: BlobSnapshotStore | undefined;
  if (isFile(target)) {
    source = createReadStream(target, { highWaterMark: MB });
    label = resolve(target);
  } else {
    store = cli.openStore();
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

async function exportSnapshot(cli: SnapshotCliContext, target: string | undefined, out: string | undefined): Promise<number> {
  const store = cli.openStore();
  try {
    let id: string;
    if (target === 'live') {
      const bar = progress('snapshot of the live cache');
      const result = await cli.withLiveCache((dump) =>
        new TakeSnapshot(dump, store, noEvents, cli.clock, { retain: cli.retain }).execute({
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
    return inspect(cli, out);
  } finally {
    store.close();
  }
}

async function importSnapshot(cli: SnapshotCliContext, args: Args): Promise<number> {
  if (args.toStore) {
    if (!isFile(args.target)) throw new UsageError('import --to-store needs a snapshot FILE');
    const file = args.target;
    const store = cli.openStore();
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
  const store: SnapshotStorePort & { close?: () => void } = fromFile ? new SnapshotFileSource(args.target!) : cli.openStore();
  try {
    const snapshotId = fromFile || (args.target !== undefined && args.target !== 'latest') ? await resolveId(store, fromFile ? (await store.list())[0]?.id : args.target) : undefined;
    return await cli.withLiveCache(async (dump, lease) => {
      // the restore lease keeps this import and a replica's own restore apart (--force: go ahead anyway)
      const held = await lease.acquire(RESTORE_LEASE, CLI_RESTORE_LEASE_MS);
      if (!held && !args.force) {
        warn('a mirror replica is restoring the cache right now (restore lease held); wait, or use --force');
        return 1;
      }
      const bar = progress('restoring into the live cache');
      const restore = () =>
        new RestoreSnapshot(dump, store, noEvents, cli.clock).execute({
          ...(snapshotId === undefined ? {} : { snapshotId }),
          onProgress: (p) =>
            bar.update(`${p.entries}${p.total > 0 ? `/${p.total}` : ''} entries read, ${p.restored} written, ${p.present} already present, ${p.expired} expired`),
          onRejected: (r) => warn(`\nsnapshot ${r.snapshotId} rejected (${r.reason}): ${r.message}${snapshotId === undefined ? '; trying the next older one' : ''}`),
        });
      const result = held ? await holdLease(lease, cli.clock, RESTORE_LEASE, CLI_RESTORE_LEASE_MS, restore) : await restore();
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
    });
  } finally {
    store.close?.();
  }
}

/**
 * Runs one CLI command; resolves to the exit status. `context` reads the configuration (after the
 * arguments are checked); it throws CliSetupError when the configuration is invalid.
 */
export async function runSnapshotCli(argv: string[], context: () => SnapshotCliContext): Promise<number> {
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
  let cli: SnapshotCliContext;
  try {
    cli = context();
  } catch (error) {
    if (error instanceof CliSetupError) {
      warn(error.message);
      return 2;
    }
    throw error;
  }
  try {
    switch (args.command) {
      case 'list':
        return await list(cli);
      case 'inspect':
        return await inspect(cli, args.target);
      case 'export':
        return await exportSnapshot(cli, args.target, args.out);
      case 'import':
        return await importSnapshot(cli, args);
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
