import type { CachedEntry, HeaderMap, Outcome, ResourceKeyParts } from '../model.js';
import { Outcome as O } from '../model.js';
import type { CachePort } from '../ports/cache.port.js';
import type { UpstreamPort, BufferedResponse } from '../ports/upstream.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import type { KeyHasherPort } from '../ports/key-hasher.port.js';
import { EventName, type ResourceResolvedEvent } from '../events/events.js';
import { ErrorCode, isMirrorError, type MirrorFailure } from '../errors.js';
import type { CrossReplicaCoalescing } from './cross-replica-coalescing.js';
import type { Candidate, CrossCredentialRevalidation } from './cross-credential-revalidation.js';
import {
  cacheControlDirectives,
  etagMatches,
  firstValue,
  hasNextLink,
  jsonArrayLength,
  pageSizeOf,
  joinValue,
  withPerResponseHeaders,
  withRefreshedHeaders,
  relayableHeaders,
  storableHeaders,
  isRateLimited,
  upstreamHeaders,
  withoutEntityHeaders,
} from '../http-semantics.js';
import type { Resolution, ServedResolution } from '../resolution.js';
import { classifyUpstreamFailure } from '../upstream-failure.js';
import { quotaSaving } from '../quota-saving.js';

export interface ResolveResourceOptions {
  /** TTL of stored entries, seconds. */
  ttlSeconds: number;
  /** Largest body kept in the cache. */
  maxEntryBytes: number;
  /** Serve without asking upstream when validated less than this long ago (0 = always revalidate). */
  freshnessMs: number;
  /**
   * After a 304, the entry's validatedAt is written back only when it is older than this (or when a
   * freshness window is on), so the hit path costs one cache round trip, not two.
   */
  revalidationWriteMs?: number;
}

export interface ResolveRequest {
  method: 'GET' | 'HEAD';
  /** Path and raw query as forwarded upstream: "/repos/a/b?x=1". */
  target: string;
  path: string;
  /** Raw query without '?'. */
  query: string;
  /** Client headers, lower-case, hop-by-hop and Host already removed. */
  headers: HeaderMap;
  credential: string | undefined;
}

/** The part of a resolution shared by coalesced callers. */
type SharedResult = SharedAnswer | SharedFailure;

/** An answer to relay (cached or upstream's). */
interface SharedAnswer {
  outcome: Outcome;
  status: number;
  headers: Readonly<Record<string, string>>;
  body: Uint8Array;
  etag: string | undefined;
  upstreamStatus?: number;
  staleAgeSeconds?: number;
  ttlSeconds?: number;
  fromCache: boolean;
  /** Served from the entry another replica fetched while this one waited (cross-replica coalescing). */
  sharedFlight?: boolean;
  /** A body GitHub confirmed for this credential, stored for another one (or the empty-list guess). */
  sharedBody?: 'shared' | 'guess';
  /** Why upstream failed, when a cached body stands in for its answer. */
  upstreamCause?: string;
  error?: undefined;
}

/** Upstream failed and nothing cached could be served: the mirror's own failure. */
interface SharedFailure {
  outcome: Outcome;
  error: MirrorFailure;
  fromCache: false;
  sharedFlight?: undefined;
}


/**
 * The GET flow of DESIGN §3: look the resource up, revalidate it with a conditional request, store
 * what changed, fall back to the cached body when upstream fails. Concurrent identical requests
 * share one upstream call.
 */
export class ResolveResource {
  private readonly inflight = new Map<string, Promise<SharedResult>>();
  private readonly revalidationWriteMs: number;

  constructor(
    private readonly cache: CachePort,
    private readonly upstream: UpstreamPort,
    private readonly keys: KeyHasherPort,
    private readonly events: EventBusPort,
    private readonly clock: ClockPort,
    private readonly options: ResolveResourceOptions,
    /** Cross-replica coalescing of cold misses (Redis); absent = this process only. */
    private readonly coalescing?: CrossReplicaCoalescing,
    /** Bodies shared across credentials (cache.shareAcrossCredentials); absent = per-credential entries only. */
    private readonly crossCredential?: CrossCredentialRevalidation,
  ) {
    this.revalidationWriteMs = options.revalidationWriteMs ?? 60_000;
  }

  async execute(request: ResolveRequest): Promise<Resolution> {
    // one object for both keys (the resource key ignores the credential): no spread copy per request
    const parts: ResourceKeyParts = {
      credential: request.credential,
      method: 'GET',
      path: request.path,
      query: request.query,
      accept: firstValue(request.headers['accept']) ?? '',
      apiVersion: firstValue(request.headers['x-github-api-version']) ?? '',
    };
    const key = this.keys.keyFor(parts);
    let shared = this.inflight.get(key);
    let collapsed = false;
    if (shared === undefined) {
      const slot: Slot = { key, sealKey: this.keys.sealKeyFor(request.credential) };
      if (this.crossCredential !== undefined) slot.resourceKey = this.keys.resourceKeyFor(parts);
      // resolveShared takes its flight out of `inflight` itself when it settles (no .finally chain)
      shared = this.resolveShared(slot, request);
      this.inflight.set(key, shared);
    } else {
      collapsed = true;
      this.events.emit({ name: EventName.coalesced, scope: 'local' });
    }
    const result = await shared;
    return this.finish(request, result, collapsed);
  }

  /** Per-caller part: the client's own validators and the outcome event. */
  private finish(request: ResolveRequest, result: SharedResult, collapsed: boolean): Resolution {
    if (result.error !== undefined) {
      this.events.emit({ name: EventName.resourceResolved, outcome: result.outcome, code: result.error.code, method: request.method, collapsed });
      return { outcome: result.outcome, error: result.error, collapsed, fromCache: false };
    }
    const resolution: ServedResolution = {
      outcome: result.outcome,
      status: result.status,
      headers: result.headers,
      body: result.body,
      collapsed: collapsed || result.sharedFlight === true,
      fromCache: result.fromCache,
    };
    if (result.upstreamStatus !== undefined) resolution.upstreamStatus = result.upstreamStatus;
    if (result.staleAgeSeconds !== undefined) resolution.staleAgeSeconds = result.staleAgeSeconds;
    if (result.ttlSeconds !== undefined) resolution.ttlSeconds = result.ttlSeconds;
    if (result.sharedBody !== undefined) resolution.sharedBody = result.sharedBody;
    if (result.upstreamCause !== undefined) resolution.upstreamCause = result.upstreamCause;
    if (result.status === 200 && etagMatches(joinValue(request.headers['if-none-match']), result.etag)) {
      resolution.status = 304;
      resolution.body = EMPTY;
      resolution.headers = withoutEntityHeaders(result.headers);
    }
    const event: ResourceResolvedEvent = {
      name: EventName.resourceResolved,
      outcome: result.outcome,
      status: resolution.status,
      method: request.method,
      collapsed: resolution.collapsed,
    };
    if (result.staleAgeSeconds !== undefined) event.staleAgeSeconds = result.staleAgeSeconds;
    const saved = quotaSaving(result.outcome, resolution.collapsed, request.credential);
    if (saved !== undefined) event.quotaSaved = saved;
    const userAgent = firstValue(request.headers['user-agent']);
    if (userAgent !== undefined) event.userAgent = userAgent;
    this.events.emit(event);
    return resolution;
  }

  /** The shared part of a resolution; its flight leaves `inflight` once settled (execute set it before the first await here ends). */
  private async resolveShared(slot: Slot, request: ResolveRequest): Promise<SharedResult> {
    try {
      const entry = await this.lookup(slot);
      if (entry === undefined && this.coalescing?.active === true) {
        return await this.coalescing.coalesce(slot.key, {
          lookup: () => this.lookup(slot),
          fetch: (found) => this.resolveWith(slot, request, found),
          share: (found) => this.sharedFlight(found),
        });
      }
      return await this.resolveWith(slot, request, entry);
    } finally {
      this.inflight.delete(slot.key);
    }
  }

  /** The entry another replica fetched while this one waited (cross-replica coalescing). */
  private sharedFlight(entry: CachedEntry): SharedResult {
    this.events.emit({ name: EventName.coalesced, scope: 'shared' });
    return { outcome: O.ONLINE_MISS, status: entry.status, headers: entry.headers, body: entry.body, etag: entry.etag, fromCache: true, sharedFlight: true };
  }

  private async resolveWith(key: Slot, request: ResolveRequest, entry: CachedEntry | undefined, unshared = false): Promise<SharedResult> {
    const now = this.clock.now();

    if (entry !== undefined && this.isFresh(entry, now)) {
      const ttlMs = this.freshnessLeftMs(entry, now);
      return {
        outcome: O.FRESH_HIT,
        status: entry.status,
        headers: entry.headers,
        body: entry.body,
        etag: entry.etag,
        ttlSeconds: Math.max(0, Math.floor(ttlMs / 1000)),
        fromCache: true,
      };
    }

    const headers = upstreamHeaders(request.headers);
    let conditional = entry !== undefined && !this.fullPageGuard(entry, request.query);
    if (conditional && entry !== undefined) {
      if (entry.etag !== undefined) headers['if-none-match'] = entry.etag;
      else if (entry.lastModified !== undefined) headers['if-modified-since'] = entry.lastModified;
    }
    // no entry of its own: offer GitHub the ETags this credential would get for the bodies stored for
    // others (never for an anonymous request: its 304s are not free, and it is one partition anyway)
    const candidates = entry === undefined && !unshared ? await this.candidatesFor(key, request, headers) : NO_CANDIDATES;
    if (candidates.length > 0) {
      headers['if-none-match'] = (this.crossCredential as CrossCredentialRevalidation).ifNoneMatch(candidates);
      conditional = true;
    }

    const started = this.clock.now();
    let response: BufferedResponse;
    try {
      response = await this.upstream.fetch({ method: 'GET', target: request.target, headers });
    } catch (error) {
      if (candidates.length > 0) this.crossCredential?.report('error', candidates);
      return this.upstreamFailed(key, error, entry, conditional, started, request.credential, firstValue(request.headers['user-agent']));
    }
    if (response.held === true) this.upstreamHeld(request, conditional, started);
    else this.upstreamCalled(response, request, conditional, started);

    const { status } = response;
    if (status === 304 && entry !== undefined) {
      return this.revalidated(key, entry, response);
    }
    if (candidates.length > 0) {
      const cross = this.crossCredential as CrossCredentialRevalidation;
      const matched = status === 304 ? cross.matched(candidates, response) : undefined;
      if (matched !== undefined) return this.sharedHit(key, matched, candidates, response);
      const failed = status >= 500 || isRateLimited(status, response.headers, response.body);
      cross.report(failed ? 'error' : '200', candidates);
      // a 304 naming none of the ETags offered proves nothing: fetch the resource as if nothing were stored
      if (status === 304) return this.resolveWith(key, request, undefined, true);
    }
    if (isRateLimited(status, response.headers, response.body)) {
      return entry !== undefined ? this.stale(O.RATE_LIMITED_HIT, entry, response) : this.passOn(O.RATE_LIMITED_MISS, response);
    }
    if (status >= 500) {
      return entry !== undefined ? this.stale(O.API_ERROR_HIT, entry, response) : this.passOn(O.API_ERROR_MISS, response);
    }
    if (status === 200) {
      await this.keepIfCacheable(key, response, entry);
    } else if (entry !== undefined && (status === 404 || status === 410)) {
      await this.forget(key);
    }
    return this.passOn(O.ONLINE_MISS, response);
  }

  private isFresh(entry: CachedEntry, now: number): boolean {
    return this.options.freshnessMs > 0 && this.freshnessLeftMs(entry, now) > 0;
  }

  private freshnessLeftMs(entry: CachedEntry, now: number): number {
    const age = now - entry.validatedAt;
    let window = this.options.freshnessMs;
    if (entry.maxAgeSeconds !== undefined) window = Math.min(window, entry.maxAgeSeconds * 1000);
    return window - age;
  }

  /**
   * GitHub answers 304 for a full first page even when a new item went to a next page; a cached
   * array with exactly per_page items and no next link is fetched unconditionally.
   */
  private fullPageGuard(entry: CachedEntry, query: string): boolean {
    return entry.arrayLength !== undefined && entry.arrayLength === pageSizeOf(query) && !hasNextLink(entry.headers['link']);
  }

  /** The hit after a 304; a promise only when validatedAt is written back (most hits need no write, nor a turn of the event loop). */
  private revalidated(key: Slot, entry: CachedEntry, response: BufferedResponse): SharedResult | Promise<SharedResult> {
    const now = this.clock.now();
    const hit = this.revalidatedHit(entry, response);
    if (this.options.freshnessMs > 0 || now - entry.validatedAt >= this.revalidationWriteMs) {
      return this.write(key, { ...entry, validatedAt: now }).then(() => hit);
    }
    return hit;
  }

  private revalidatedHit(entry: CachedEntry, response: BufferedResponse): SharedResult {
    return {
      outcome: O.ONLINE_HIT,
      status: entry.status,
      // the entry's headers with the 304's over them, written into one copy
      headers: withRefreshedHeaders(copyOf(entry.headers), response.headers),
      body: entry.body,
      etag: entry.etag,
      upstreamStatus: 304,
      fromCache: true,
    };
  }

  private async candidatesFor(slot: Slot, request: ResolveRequest, headers: HeaderMap): Promise<readonly Candidate[]> {
    if (this.crossCredential === undefined || slot.resourceKey === undefined || request.credential === undefined) return NO_CANDIDATES;
    return this.crossCredential.candidates(slot.resourceKey, headers, request.query);
  }

  /** GitHub's 304 named a body stored for another credential (or the empty list): it is this one's too. */
  private async sharedHit(slot: Slot, candidate: Candidate, offered: readonly Candidate[], response: BufferedResponse): Promise<SharedResult> {
    const cross = this.crossCredential as CrossCredentialRevalidation;
    const hit = cross.hit(candidate, response, this.clock.now());
    cross.report('304', offered, hit.detail);
    await this.write(slot, hit.entry);
    return {
      outcome: O.ONLINE_HIT,
      status: hit.entry.status,
      headers: hit.headers,
      body: hit.entry.body,
      etag: hit.entry.etag,
      upstreamStatus: 304,
      fromCache: true,
      sharedBody: hit.detail,
    };
  }

  /** A cached body served because upstream could not give a good answer. */
  private stale(outcome: Outcome, entry: CachedEntry, response?: BufferedResponse): SharedResult {
    const now = this.clock.now();
    const result: SharedResult = {
      outcome,
      status: entry.status,
      headers: response ? withPerResponseHeaders(copyOf(entry.headers), response.headers) : entry.headers,
      body: entry.body,
      etag: entry.etag,
      staleAgeSeconds: Math.max(0, Math.floor((now - entry.validatedAt) / 1000)),
      fromCache: true,
    };
    if (response) result.upstreamStatus = response.status;
    return result;
  }

  private passOn(outcome: Outcome, response: BufferedResponse): SharedResult {
    return {
      outcome,
      status: response.status,
      headers: relayableHeaders(response.headers),
      body: response.body,
      etag: firstValue(response.headers['etag']),
      upstreamStatus: response.status,
      fromCache: false,
    };
  }

  private async upstreamFailed(
    key: Slot,
    error: unknown,
    entry: CachedEntry | undefined,
    conditional: boolean,
    started: number,
    credential: string | undefined,
    userAgent: string | undefined,
  ): Promise<SharedResult> {
    const failure = classifyUpstreamFailure(error);
    const countedAgainstQuota = failure.answered && countsAgainstQuota(200, credential);
    this.events.emit({
      name: EventName.upstreamCalled,
      result: failure.result,
      countedAgainstQuota,
      conditional,
      durationMs: this.clock.now() - started,
      ...(userAgent !== undefined ? { userAgent } : {}),
    });
    if (entry !== undefined && failure.hit !== undefined) {
      const stale = this.stale(failure.hit, entry);
      if (stale.error === undefined && failure.error.cause !== undefined) stale.upstreamCause = failure.error.cause;
      return stale;
    }
    // GitHub answered with a body the mirror does not hold: the entry is outdated, not a fallback
    if (entry !== undefined) await this.forget(key);
    return { outcome: failure.miss, error: failure.error, fromCache: false };
  }

  /** The governor kept the call back (the credential is held): no call, nothing counted against a quota. */
  private upstreamHeld(request: ResolveRequest, conditional: boolean, started: number): void {
    const userAgent = firstValue(request.headers['user-agent']);
    this.events.emit({
      name: EventName.upstreamCalled,
      result: 'refused',
      countedAgainstQuota: false,
      conditional,
      durationMs: this.clock.now() - started,
      ...(userAgent !== undefined ? { userAgent } : {}),
    });
  }

  private upstreamCalled(response: BufferedResponse, request: ResolveRequest, conditional: boolean, started: number): void {
    const remaining = firstValue(response.headers['x-ratelimit-remaining']);
    const resource = firstValue(response.headers['x-ratelimit-resource']);
    const event: {
      name: typeof EventName.upstreamCalled;
      result: 'ok';
      status: number;
      countedAgainstQuota: boolean;
      conditional: boolean;
      durationMs: number;
      rateLimitRemaining?: number;
      rateLimitResource?: string;
      userAgent?: string;
    } = {
      name: EventName.upstreamCalled,
      result: 'ok',
      status: response.status,
      countedAgainstQuota: countsAgainstQuota(response.status, request.credential),
      conditional,
      durationMs: this.clock.now() - started,
    };
    if (remaining !== undefined && remaining !== '') event.rateLimitRemaining = Number(remaining);
    if (resource !== undefined) event.rateLimitResource = resource;
    const userAgent = firstValue(request.headers['user-agent']);
    if (userAgent !== undefined) event.userAgent = userAgent;
    this.events.emit(event);
  }

  private async keepIfCacheable(key: Slot, response: BufferedResponse, previous: CachedEntry | undefined): Promise<void> {
    const etag = firstValue(response.headers['etag']);
    const lastModified = firstValue(response.headers['last-modified']);
    const cacheControl = cacheControlDirectives(firstValue(response.headers['cache-control']));
    const cacheable =
      (etag !== undefined || lastModified !== undefined) &&
      !cacheControl.has('no-store') &&
      response.body.byteLength <= this.options.maxEntryBytes;
    if (!cacheable) {
      if (previous !== undefined) await this.forget(key);
      return;
    }
    const now = this.clock.now();
    const headers = storableHeaders(response.headers);
    const entry: CachedEntry = { status: 200, headers, body: response.body, storedAt: now, validatedAt: now };
    if (etag !== undefined) entry.etag = etag;
    if (lastModified !== undefined) entry.lastModified = lastModified;
    const arrayLength = jsonArrayLength(headers['content-type'], response.body);
    if (arrayLength !== undefined) entry.arrayLength = arrayLength;
    const maxAge = cacheControl.get('max-age');
    if (typeof maxAge === 'string' && /^\d+$/.test(maxAge)) entry.maxAgeSeconds = Number(maxAge);
    await this.write(key, entry);
  }

  private async lookup(slot: Slot): Promise<CachedEntry | undefined> {
    try {
      return await this.cache.lookup(slot.key, slot.sealKey, slot.resourceKey);
    } catch (error) {
      this.cacheFailed('lookup', error);
      return undefined;
    }
  }

  private async write(slot: Slot, entry: CachedEntry): Promise<void> {
    try {
      await this.cache.store(slot.key, entry, this.options.ttlSeconds, slot.sealKey, slot.resourceKey);
    } catch (error) {
      this.cacheFailed('store', error);
    }
  }

  private async forget(slot: Slot): Promise<void> {
    try {
      await this.cache.forget(slot.key, slot.resourceKey);
    } catch (error) {
      this.cacheFailed('forget', error);
    }
  }

  private cacheFailed(operation: string, error: unknown): void {
    this.events.emit({
      name: EventName.cacheError,
      backend: this.cache.backend,
      operation,
      code: isMirrorError(error) ? error.code : ErrorCode.CACHE_UNAVAILABLE,
      message: error instanceof Error ? error.message : String(error),
    });
  }
}

const EMPTY = new Uint8Array(0);

/**
 * A copy of a header set to write others over (the entry's own is never changed), key by key. Not
 * `{ ...a, ...b }`: when b overwrites keys of a (etag, cache-control, vary), V8 makes new hidden
 * classes for every object so built — microseconds and old-generation garbage on every revalidated hit.
 */
function copyOf(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) out[name] = headers[name] as string;
  return out;
}

/**
 * Where an entry lives: its cache key, the credential-derived key that seals it at rest, and with
 * bodies shared across credentials the resource's key (KeyHasherPort.resourceKeyFor).
 */
interface Slot {
  key: string;
  sealKey: Uint8Array;
  resourceKey?: string;
}

const NO_CANDIDATES: readonly Candidate[] = [];

/** GitHub: a 304 to an authenticated request is free; everything else costs one unit. */
export function countsAgainstQuota(status: number, credential: string | undefined): boolean {
  return !(status === 304 && credential !== undefined);
}
