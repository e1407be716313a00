/**
 * Cross-credential revalidation (DESIGN §3, issue 16): a credential with no entry of its own asks
 * GitHub, with its own request, whether one of the bodies the cache already holds for the resource is
 * its answer too. For each stored representation (the few most recently validated) it computes the
 * ETag GitHub would give this credential for that body (src/domain/github-etag.ts) and sends them
 * as one If-None-Match list; when nothing at all is stored it offers the ETag of `[]` instead (an
 * empty list, the common answer to a bot's polling). GitHub's 304 names the matching ETag: that
 * body is served (a 304 proves both that this credential may read the resource and that its
 * representation is byte-identical) and becomes the credential's own entry. A 304 naming none of
 * them, or any other answer, is a miss.
 *
 * Safety: a representation is only ever offered to GitHub, never served, until GitHub answered 304
 * to this credential for it. Stale answers and the freshness window never come here (they use the
 * credential's own entry only).
 */
import type { CachedEntry, HeaderMap, StoredRepresentation } from '../model.js';
import type { CachePort } from '../ports/cache.port.js';
import type { DigestPort } from '../ports/digest.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import type { BufferedResponse } from '../ports/upstream.port.js';
import { EventName, type CrossCredentialRevalidationEvent } from '../events/events.js';
import { ErrorCode, isMirrorError } from '../errors.js';
import { EMPTY_LIST_BODY, githubEtagFor, opaqueTag } from '../github-etag.js';
import { cacheControlDirectives, firstValue, hasNextLink, pageSizeOf, perResponseHeaders, storableHeaders } from '../http-semantics.js';

export interface CrossCredentialOptions {
  /** Stored bodies offered in one If-None-Match list (default 4). */
  maxCandidates?: number;
  /** Offer the ETag of `[]` when nothing is stored for the resource (default true). */
  guessEmptyList?: boolean;
}

/** One ETag offered to GitHub, and what it stands for. */
export interface Candidate {
  etag: string;
  /** The stored body it was computed from; undefined = the empty-list guess. */
  representation: StoredRepresentation | undefined;
}

/** What the GET flow serves after a 304 that named one of the candidates. */
export interface SharedHit {
  /** The credential's own entry, made from the body and GitHub's 304 (to store and to serve). */
  entry: CachedEntry;
  /** Headers to serve: the entry's plus the 304's per-response ones. */
  headers: Record<string, string>;
  detail: 'shared' | 'guess';
}

const JSON_TYPE = 'application/json; charset=utf-8';

export class CrossCredentialRevalidation {
  private readonly maxCandidates: number;
  private readonly guessEmptyList: boolean;

  constructor(
    private readonly cache: CachePort,
    private readonly digest: DigestPort,
    private readonly events: EventBusPort,
    options: CrossCredentialOptions = {},
  ) {
    this.maxCandidates = options.maxCandidates ?? 4;
    this.guessEmptyList = options.guessEmptyList ?? true;
  }

  /**
   * The ETags to offer for a credential with no entry of its own, computed from the exact header
   * values the mirror sends upstream (`upstreamHeaders`). [] = nothing to offer: fetch as usual.
   */
  async candidates(resourceKey: string, upstreamHeaders: HeaderMap, query: string): Promise<Candidate[]> {
    let stored: readonly StoredRepresentation[];
    try {
      stored = await this.cache.representations(resourceKey, this.maxCandidates);
    } catch (error) {
      this.events.emit({
        name: EventName.cacheError,
        backend: this.cache.backend,
        operation: 'representations',
        code: isMirrorError(error) ? error.code : ErrorCode.CACHE_UNAVAILABLE,
        message: error instanceof Error ? error.message : String(error),
      });
      stored = [];
    }
    const out: Candidate[] = [];
    const seen = new Set<string>();
    const offer = (etag: string, representation: StoredRepresentation | undefined): void => {
      const tag = opaqueTag(etag);
      if (seen.has(tag)) return;
      seen.add(tag);
      out.push({ etag, representation });
    };
    for (const rep of stored.slice(0, this.maxCandidates)) {
      // a full first page may be answered 304 although an item went to a next page (DESIGN §3)
      if (rep.arrayLength !== undefined && rep.arrayLength === pageSizeOf(query) && !hasNextLink(rep.headers['link'])) continue;
      offer(githubEtagFor(this.digest, upstreamHeaders, rep.body, rep.headers['vary']), rep);
    }
    if (stored.length === 0 && this.guessEmptyList) offer(githubEtagFor(this.digest, upstreamHeaders, EMPTY_LIST_BODY), undefined);
    return out;
  }

  /** The If-None-Match value that offers every candidate at once. */
  ifNoneMatch(candidates: readonly Candidate[]): string {
    return candidates.map((c) => c.etag).join(', ');
  }

  /** The candidate GitHub's 304 names in its ETag; undefined = none of ours (a miss). */
  matched(candidates: readonly Candidate[], response: BufferedResponse): Candidate | undefined {
    const named = firstValue(response.headers['etag']);
    if (named === undefined) return undefined;
    const tag = opaqueTag(named);
    return candidates.find((c) => opaqueTag(c.etag) === tag);
  }

  /** The credential's own entry from the matched body and GitHub's 304 to this credential. */
  hit(candidate: Candidate, response: BufferedResponse, now: number): SharedHit {
    const rep = candidate.representation;
    const fromUpstream = storableHeaders(response.headers);
    const headers: Record<string, string> = rep === undefined ? { 'content-type': JSON_TYPE } : { ...rep.headers };
    Object.assign(headers, fromUpstream);
    const etag = firstValue(response.headers['etag']) ?? candidate.etag;
    headers['etag'] = etag;
    const entry: CachedEntry = { status: rep?.status ?? 200, headers, body: rep?.body ?? EMPTY_LIST_BODY, etag, storedAt: now, validatedAt: now };
    const lastModified = fromUpstream['last-modified'] ?? rep?.lastModified;
    if (lastModified !== undefined) entry.lastModified = lastModified;
    const arrayLength = rep === undefined ? 0 : rep.arrayLength;
    if (arrayLength !== undefined) entry.arrayLength = arrayLength;
    const maxAge = cacheControlDirectives(headers['cache-control']).get('max-age');
    if (typeof maxAge === 'string' && /^\d+$/.test(maxAge)) entry.maxAgeSeconds = Number(maxAge);
    return { entry, headers: { ...headers, ...perResponseHeaders(response.headers) }, detail: rep === undefined ? 'guess' : 'shared' };
  }

  /** Tells the metrics how an attempt went and the quota unit it saved (a 304 to a credential is free). */
  report(result: CrossCredentialRevalidationEvent['result'], candidates: readonly Candidate[], detail?: 'shared' | 'guess'): void {
    const event: CrossCredentialRevalidationEvent = {
      name: EventName.crossCredentialRevalidation,
      result,
      candidates: candidates.length,
      guess: candidates.some((c) => c.representation === undefined),
      quotaSaved: result === '304' ? 1 : 0,
    };
    if (detail !== undefined) event.served = detail;
    this.events.emit(event);
  }
}
