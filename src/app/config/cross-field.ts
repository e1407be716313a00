/**
 * Cross-field rules: checks that need several keys at once (Sentinel vs Cluster, TLS cert and key,
 * timeouts, sizes, production secrets, snapshot stores). A key that already failed its own format
 * is left out of these checks so one mistake gives one problem.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { MirrorConfig } from './types.js';

export function crossFieldProblems(config: MirrorConfig, nodeEnv: string, badKeys: Set<string>, problems: string[]): void {
  const ok = (...keys: string[]): boolean => keys.every((key) => !badKeys.has(key));
  const { server, cache, snapshot } = config;

  if (ok('cache.redis.sentinels', 'cache.redis.clusterNodes')) {
    if (cache.redis.sentinels.length > 0 && cache.redis.clusterNodes.length > 0) {
      problems.push(
        'cache.redis.sentinels: cannot be combined with cache.redis.clusterNodes (Sentinel and Cluster are different deployments; set one)',
      );
    }
  }
  if (ok('cache.redis.sentinels', 'cache.redis.sentinelName')) {
    if (cache.redis.sentinels.length > 0 && cache.redis.sentinelName.trim() === '') {
      problems.push('cache.redis.sentinelName: required when cache.redis.sentinels is set');
    }
  }

  if (ok('server.tls.cert', 'server.tls.key')) {
    const { cert, key } = server.tls;
    if (cert !== '' && key === '') problems.push('server.tls.key: required when server.tls.cert is set (both or neither)');
    if (key !== '' && cert === '') problems.push('server.tls.cert: required when server.tls.key is set (both or neither)');
    for (const [name, path] of [
      ['server.tls.cert', cert],
      ['server.tls.key', key],
    ] as const) {
      if (path !== '' && !isReadableFile(path)) problems.push(`${name}: file not found or not a file: ${resolve(path)}`);
    }
  }

  if (ok('server.headersTimeoutMs', 'server.requestTimeoutMs') && server.headersTimeoutMs > server.requestTimeoutMs) {
    problems.push(
      `server.headersTimeoutMs: must not exceed server.requestTimeoutMs (${server.headersTimeoutMs} > ${server.requestTimeoutMs})`,
    );
  }

  if (ok('cache.maxEntryBytes', 'cache.memory.maxBytes') && cache.maxEntryBytes > cache.memory.maxBytes) {
    problems.push(
      `cache.maxEntryBytes: must not exceed cache.memory.maxBytes (${cache.maxEntryBytes} > ${cache.memory.maxBytes})`,
    );
  }

  if (ok('cache.backend', 'cache.secret') && nodeEnv === 'production' && cache.backend === 'redis' && cache.secret === '') {
    problems.push('cache.secret: required in production with the redis backend (all replicas must share it)');
  }

  if (ok('snapshot.store', 'snapshot.s3.bucket') && snapshot.store === 's3' && snapshot.s3.bucket.trim() === '') {
    problems.push('snapshot.s3.bucket: required when snapshot.store is s3');
  }
  if (ok('snapshot.store', 'snapshot.dir') && snapshot.store === 'file' && snapshot.dir.trim() === '') {
    problems.push('snapshot.dir: required when snapshot.store is file');
  }
}

function isReadableFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
