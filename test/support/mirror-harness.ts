import { loadConfig, type MirrorConfig } from '../../src/app/config/index.js';
import { Mirror, type MirrorOptions } from '../../src/app/mirror.js';

/** Starts a real mirror on an ephemeral loopback port in front of `upstreamUrl`. */
export async function startMirror(
  upstreamUrl: string,
  env: Record<string, string> = {},
  options: MirrorOptions & { patch?: (config: MirrorConfig) => void } = {},
): Promise<Mirror> {
  const config = loadConfig({
    env: { NODE_ENV: 'test', MIRROR_UPSTREAM_URL: upstreamUrl, MIRROR_CACHE_SECRET: 'test-secret', ...env },
    args: [],
  });
  options.patch?.(config);
  const mirror = new Mirror(config, options);
  await mirror.start();
  return mirror;
}

/** Reads a response's body as text and its headers as a plain object. */
export async function fetchText(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}
