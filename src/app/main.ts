import { loadConfig, ConfigError, redactedConfig } from './config/index.js';
import { Mirror } from './mirror.js';

/**
 * Entry point: load and check the config, start the mirror, stop it gracefully on SIGTERM, SIGINT or
 * SIGHUP (a closed terminal or a supervisor's hang-up: drain, final snapshot, exit). Exit codes: 0
 * stopped cleanly; 1 failed to start or to stop; 2 invalid configuration; 3 stopped, but requests
 * still in flight at the end of server.shutdownGraceMs were cut (logged with their paths).
 */
/** Stopped, but the grace period ran out with requests in flight: they were cut. */
const EXIT_REQUESTS_CUT = 3;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`github-mirror: invalid configuration\n${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const mirror = new Mirror(config);
  mirror.logger.info({ config: redactedConfig(config) }, 'configuration loaded');
  if (!config.cache.secret) mirror.logger.warn('cache.secret is not set: using the development secret; set MIRROR_CACHE_SECRET in production');
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    mirror.logger.info({ signal }, 'shutting down');
    mirror.stop().then(
      () => process.exit(mirror.requestsCut > 0 ? EXIT_REQUESTS_CUT : 0),
      (error: unknown) => {
        mirror.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  await mirror.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`github-mirror: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
