/**
 * How the edge answers a cached GET or HEAD: the use case's resolution written on node's
 * ServerResponse itself — upstream URLs rewritten to the mirror's public URL, X-Cache and
 * Cache-Status, gzip for clients that accept it (compressed once per entry body) — and any error
 * as the mirror's JSON answer (errors.plugin.ts's answerForError, the one fastify's error handler
 * gives). It never rejects.
 *
 * Two callers: the GET fast path (proxy-routes.plugin.ts), which takes these requests before
 * fastify's router, and the fastify route for GET and HEAD (a hijacked reply: inject(), and what
 * the fast path leaves to fastify). The answer is the one fastify's reply.send() made: the same
 * headers, Content-Length and default Content-Type.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { ResolveRequest } from '../../domain/use-cases/resolve-resource.js';
import type { Resolution } from '../../domain/resolution.js';
import type { ParsedTarget } from './request-target.js';
import type { UrlRewriter } from './url-rewriter.js';
import type { BodyVariants } from './body-variants.js';
import type { RequestState } from './access-log.js';
import { answerForError, failureAnswer, type EdgeAnswer } from './errors.plugin.js';
import { cacheStatusValue } from './cache-status.js';
import { copyHeaders, credentialOf, forwardableHeaders, publicBaseFor, type PublicBaseOptions } from './forwarding.js';

const gzipAsync = promisify(gzip);
const gzipBody = (body: Buffer): Promise<Buffer> => gzipAsync(body, { level: 6 });

/** Bodies at least this large are gzipped for clients that accept it. */
const GZIP_MIN_BYTES = 1024;

const EMPTY_BODY: Buffer = Buffer.alloc(0);

export interface GetEdgeDeps {
  resolveResource: { execute(request: ResolveRequest): Promise<Resolution> };
  /** Optional admission check (allowlist): rejects with a MirrorError to refuse a request. */
  admit?: (credential: string | undefined) => Promise<void>;
  rewriter: UrlRewriter;
  variants: BodyVariants;
  publicBase: PublicBaseOptions;
  rewriteBodyUrls: boolean;
  /** Logs an error the edge did not expect (answered with a generic 500), with the request's id. */
  unexpected(reqId: string, error: Error): void;
}

export class GetEdge {
  constructor(private readonly deps: GetEdgeDeps) {}

  /** Answers a GET or HEAD for `target` (checked already); the answer's outcome, cause and size go to `state`. */
  async serve(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, state: RequestState, reqId: string): Promise<void> {
    try {
      const credential = credentialOf(req.headers);
      if (this.deps.admit) await this.deps.admit(credential);
      const resolution = await this.deps.resolveResource.execute({
        method: req.method === 'HEAD' ? 'HEAD' : 'GET',
        target: target.forward,
        path: target.path,
        query: target.query,
        headers: forwardableHeaders(req.headers),
        credential,
      });
      state.outcome = resolution.outcome;
      if (resolution.error !== undefined) {
        if (resolution.error.cause !== undefined) state.cause = resolution.error.cause;
        writeAnswer(res, state, failureAnswer(resolution.error, resolution));
        return;
      }
      if (resolution.upstreamCause !== undefined) state.cause = resolution.upstreamCause;
      await this.writeResolution(req, res, state, resolution, publicBaseFor(req.headers, this.deps.publicBase) + target.prefix);
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      if (res.headersSent) {
        res.destroy(failure);
        return;
      }
      writeAnswer(res, state, answerForError(failure, state, (err) => this.deps.unexpected(reqId, err)));
    }
  }

  private async writeResolution(req: IncomingMessage, res: ServerResponse, state: RequestState, resolution: Resolution & { error?: undefined }, publicBase: string): Promise<void> {
    const { rewriter, variants } = this.deps;
    const out = copyHeaders(resolution.headers);
    const link = out['link'];
    if (link !== undefined) out['link'] = rewriter.rewriteHeader(link, publicBase);
    const location = out['location'];
    if (location !== undefined) out['location'] = rewriter.rewriteHeader(location, publicBase);
    out['x-cache'] = resolution.outcome;
    out['cache-status'] = cacheStatusValue(resolution);
    if (resolution.staleAgeSeconds !== undefined) {
      out['x-cache-stale-age'] = String(resolution.staleAgeSeconds);
      state.staleAgeSeconds = resolution.staleAgeSeconds;
    }
    const status = resolution.status;
    if (status === 304 || status === 204) {
      // no body: headers as they are (a Content-Length upstream gave stays, none is added)
      if (out['content-length'] !== undefined) state.bytes = Number(out['content-length']);
      res.writeHead(status, out);
      res.end();
      return;
    }
    const source = resolution.body;
    let body = EMPTY_BODY;
    if (source.byteLength > 0) {
      body = variants.served(source, publicBase, this.deps.rewriteBodyUrls && isTextual(out['content-type']) ? rewriter : undefined);
      if (body.byteLength >= GZIP_MIN_BYTES && acceptsGzip(req.headers['accept-encoding'])) {
        body = await variants.gzipped(source, publicBase, body, gzipBody);
        out['content-encoding'] = 'gzip';
        out['vary'] = addVary(out['vary'], 'Accept-Encoding');
      }
    }
    out['content-type'] ??= 'application/octet-stream';
    // a HEAD answer keeps the Content-Length upstream gave; any other gets the length of what is sent
    const declared = out['content-length'];
    if (declared === undefined || declared === '' || (req.method !== 'HEAD' && Number(declared) !== body.byteLength)) out['content-length'] = String(body.byteLength);
    state.bytes = Number(out['content-length']);
    res.writeHead(status, out);
    res.end(body);
  }
}

/** An answer the edge made itself (an error), written whole. */
export function writeAnswer(res: ServerResponse, state: RequestState, answer: EdgeAnswer): void {
  const length = Buffer.byteLength(answer.body);
  state.bytes = length;
  answer.headers['content-length'] = String(length);
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

function isTextual(contentType: string | undefined): boolean {
  return contentType === undefined || contentType.includes('json') || contentType.startsWith('text/');
}

function acceptsGzip(value: string | string[] | undefined): boolean {
  const header = Array.isArray(value) ? value.join(',') : value;
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

function addVary(vary: string | undefined, name: string): string {
  if (vary === undefined || vary === '') return name;
  return vary.toLowerCase().split(',').some((v) => v.trim() === name.toLowerCase()) ? vary : `${vary}, ${name}`;
}
