/**
 * How the HTTP edge's plugins are declared: the marks fastify-plugin would set, without the package.
 * A plugin defined here is registered at its caller's level (its hooks, handlers, parsers and
 * decorations apply to the whole server, as when it was one function), under a name; fastify checks
 * at registration that the plugins and request decorations it needs are already there.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyPluginOptions } from 'fastify';

export interface PluginMeta {
  name: string;
  /** Names of plugins that must be registered first. */
  dependencies?: string[];
  decorators?: { request?: string[] };
}

/** `setup` registers the plugin's hooks and routes; an error it throws (a bad option) fails the registration. */
export function definePlugin<Options extends FastifyPluginOptions>(meta: PluginMeta, setup: (app: FastifyInstance, options: Options) => void): FastifyPluginCallback<Options> {
  const plugin: FastifyPluginCallback<Options> = (app, options, done) => {
    try {
      setup(app, options);
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    done();
  };
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: meta.name,
    [Symbol.for('plugin-meta')]: meta,
  });
}

/** A registration-time check of a plugin's options: a misconfigured server fails at ready(), not on the first request. */
export function requireOption(plugin: string, condition: boolean, what: string): void {
  if (!condition) throw new TypeError(`${plugin}: ${what}`);
}
