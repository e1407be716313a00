/**
 * Entry of the operator CLI for cache snapshots: `node dist/app/snapshot-cli.js <command>` in the
 * container image, `npm run snapshot -- <command>` (scripts/snapshot-cli.ts) in a checkout. It reads
 * the mirror's configuration the way the mirror does (config/*.json, --config FILE, MIRROR_*
 * variables), so it sees the same store and cache, and hands them to the commands in
 * src/adapters/cli/snapshot-cli.ts.
 */
import { pathToFileURL } from 'node:url';
import { loadConfig, ConfigError, type MirrorConfig } from './config/index.js';
import { createLogger } from './logger.js';
import { buildSnapshotStore, createSnapshotRedisClient, redisSnapshotPorts } from './wiring/snapshots.js';
import { systemClock } from '../adapters/clock/system-clock.adapter.js';
import { CliSetupError, runSnapshotCli as runCommands, type SnapshotCliContext } from '../adapters/cli/snapshot-cli.js';
import { warn } from '../adapters/cli/cli-output.js';

/** The store and the live cache of the mirror configured by `config`. */
function contextOf(config: MirrorConfig): SnapshotCliContext {
  return {
    retain: config.snapshot.retain,
    clock: systemClock,
    openStore() {
      const store = buildSnapshotStore(config, createLogger('warn'), { writer: 'github-mirror snapshot-cli' });
      if (store === undefined) throw new Error('snapshot.store is none: set MIRROR_SNAPSHOT_STORE=file or s3 (and its settings)');
      return store;
    },
    async withLiveCache(work) {
      if (config.cache.backend !== 'redis') {
        throw new Error(
          'the live cache is the memory backend: it lives inside each mirror process. Use "import FILE --to-store" to add a snapshot that mirrors restore when they start.',
        );
      }
      const client = createSnapshotRedisClient(config);
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { dump, lease } = redisSnapshotPorts(config, client);
        return await work(dump, lease);
      } finally {
        await client.quit().catch(() => client.disconnect());
      }
    },
  };
}

/** Runs one CLI command (the configuration from `argv` and the environment); resolves to the exit status. */
export function runSnapshotCli(argv: string[]): Promise<number> {
  return runCommands(argv, () => {
    try {
      return contextOf(loadConfig({ args: argv }));
    } catch (error) {
      if (error instanceof ConfigError) throw new CliSetupError(`invalid configuration\n${error.message}`);
      throw error;
    }
  });
}

/** Runs the CLI as this process: its exit status is the command's. */
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
