/**
 * What both kinds of proxied request (cached GET/HEAD and pass-through) do with a client's request
 * headers: the set forwarded upstream, and the public base URL answers are rewritten to.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP } from '../../domain/http-semantics.js';
import type { HeaderMap } from '../../domain/model.js';

/**
 * Client headers as forwarded: hop-by-hop, Connection-listed, Host and Expect removed (the mirror's own
 * server answers `Expect: 100-continue`; the expectation is about this hop, and undici refuses to send it).
 */
export function forwardableHeaders(headers: IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = {};
  const connection = headers.connection;
  const listed = typeof connection === 'string' ? connectionTokens(connection) : undefined;
  for (const name in headers) {
    if (name === 'host' || name === 'expect' || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

/** Connection header values seen, with their tokens: a handful of distinct values ("keep-alive", "close") serve every request. */
const connectionValues = new Map<string, ReadonlySet<string>>();

function connectionTokens(value: string): ReadonlySet<string> {
  let tokens = connectionValues.get(value);
  if (tokens === undefined) {
    tokens = new Set(value.toLowerCase().split(',').map((s) => s.trim()));
    if (connectionValues.size >= 64) connectionValues.clear();
    connectionValues.set(value, tokens);
  }
  return tokens;
}

export interface PublicBaseOptions {
  /** server.publicUrl without its trailing slashes; '' = derive from the request. */
  configured: string;
  /** The server listens with TLS: a derived public URL is https. */
  https: boolean;
  trustProxy: boolean;
}

/** The public base URL the client asked under: the configured one, else its Host (X-Forwarded-* when trusted). */
export function publicBaseFor(headers: IncomingHttpHeaders, options: PublicBaseOptions): string {
  if (options.configured !== '') return options.configured;
  let proto = options.https ? 'https' : 'http';
  let host = headers.host ?? 'localhost';
  if (options.trustProxy) {
    const fProto = headers['x-forwarded-proto'];
    const fHost = headers['x-forwarded-host'];
    if (typeof fProto === 'string' && /^https?$/i.test(fProto.split(',')[0]?.trim() ?? '')) proto = (fProto.split(',')[0] ?? proto).trim().toLowerCase();
    if (typeof fHost === 'string' && fHost !== '') host = (fHost.split(',')[0] ?? host).trim();
  }
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(host)) host = 'localhost';
  return `${proto}://${host}`;
}

/**
 * A copy of an answer's headers for the edge to add its own to. Key by key, not `{ ...headers }`:
 * V8 gives every spread copy that is then written to a hidden class of its own (microseconds and
 * old-generation garbage per answer).
 */
export function copyHeaders<V>(headers: Readonly<Record<string, V>>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const name in headers) out[name] = headers[name] as V;
  return out;
}

/** The credential a request carries: its Authorization value, none when absent or empty. */
export function credentialOf(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  return typeof authorization === 'string' && authorization !== '' ? authorization : undefined;
}
