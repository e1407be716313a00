import { Readable } from 'node:stream';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../domain/ports/upstream.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import type { HeaderMap } from '../../domain/model.js';
import { firstValue } from '../../domain/http-semantics.js';

export interface SecondaryLimitGateOptions {
  /** Most credentials held at once; the oldest hold is dropped beyond it (default 10 000). */
  maxCredentials?: number;
  /** Upper bound on a hold, whatever Retry-After says (default 3600 s). */
  maxHoldSeconds?: number;
  /** Hold after a 429, or a 403 that names a secondary rate limit, without Retry-After (default 60 s, as GitHub advises). */
  defaultHoldSeconds?: number;
}

/** Hashes a credential (KeyHasherPort.partitionOf fits): the gate never keeps an Authorization value in clear. */
export interface CredentialHasher {
  partitionOf(credential: string | undefined): string;
}

interface Closable {
  close?(): Promise<void>;
  destroy?(): Promise<void>;
}

const SECONDARY_DOCS = 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits';
const decoder = new TextDecoder();

/**
 * UpstreamPort decorator for GitHub's secondary rate limits. After a 429, or a 403 carrying Retry-After
 * (or naming a secondary rate limit), for a credential, that credential's requests are not sent upstream
 * until the wait is over: the gate answers a synthetic 429 with the Retry-After still to wait, so the
 * GET flow serves RATE_LIMITED_HIT from the cache or passes the 429 on (RATE_LIMITED_MISS), and
 * pass-through requests get the 429 too. Retrying during the wait is what GitHub punishes with longer
 * bans. Holds are keyed by a hash of the Authorization header (anonymous requests share one hold: GitHub
 * limits them per address, and they all leave from the mirror's), in a bounded map.
 */
export class SecondaryLimitGate implements UpstreamPort {
  /** Credential hash → epoch ms until which its requests are held. Insertion order = age. */
  private readonly holds = new Map<string, number>();
  private readonly maxCredentials: number;
  private readonly maxHoldMs: number;
  private readonly defaultHoldMs: number;

  constructor(
    private readonly inner: UpstreamPort & Closable,
    private readonly hasher: CredentialHasher,
    private readonly clock: ClockPort,
    options: SecondaryLimitGateOptions = {},
  ) {
    this.maxCredentials = options.maxCredentials ?? 10_000;
    this.maxHoldMs = (options.maxHoldSeconds ?? 3600) * 1000;
    this.defaultHoldMs = (options.defaultHoldSeconds ?? 60) * 1000;
  }

  /** Number of credentials currently held (for tests and readiness). */
  get heldCount(): number {
    this.sweep(this.clock.now());
    return this.holds.size;
  }

  async fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    const id = this.idOf(request.headers);
    const waitMs = this.remainingMs(id);
    if (waitMs > 0) return { ...syntheticAnswer(waitMs), body: syntheticBody(waitMs) };
    const response = await this.inner.fetch(request);
    this.observe(id, response.status, response.headers, response.body);
    return response;
  }

  async forward(request: UpstreamRequest): Promise<StreamedResponse> {
    const id = this.idOf(request.headers);
    const waitMs = this.remainingMs(id);
    if (waitMs > 0) return { ...syntheticAnswer(waitMs), body: Readable.from([Buffer.from(syntheticBody(waitMs))]) };
    const response = await this.inner.forward(request);
    this.observe(id, response.status, response.headers, undefined);
    return response;
  }

  async close(): Promise<void> {
    this.holds.clear();
    await this.inner.close?.();
  }

  async destroy(): Promise<void> {
    this.holds.clear();
    await this.inner.destroy?.();
  }

  private idOf(headers: HeaderMap): string {
    const authorization = firstValue(headers['authorization']);
    return this.hasher.partitionOf(authorization === undefined || authorization === '' ? undefined : authorization);
  }

  private remainingMs(id: string): number {
    const until = this.holds.get(id);
    if (until === undefined) return 0;
    const left = until - this.clock.now();
    if (left <= 0) this.holds.delete(id);
    return left;
  }

  private observe(id: string, status: number, headers: HeaderMap, body: Uint8Array | undefined): void {
    if (status !== 429 && status !== 403) return;
    const retryAfter = parseRetryAfter(firstValue(headers['retry-after']), this.clock.now());
    let holdMs: number | undefined;
    if (retryAfter !== undefined) holdMs = retryAfter;
    else if (status === 429 || namesSecondaryLimit(body)) holdMs = this.defaultHoldMs;
    if (holdMs === undefined || holdMs <= 0) return;
    this.hold(id, Math.min(holdMs, this.maxHoldMs));
  }

  private hold(id: string, ms: number): void {
    const now = this.clock.now();
    const until = now + ms;
    const current = this.holds.get(id);
    this.holds.delete(id);
    this.holds.set(id, current !== undefined && current > until ? current : until);
    if (this.holds.size > this.maxCredentials) this.sweep(now);
    while (this.holds.size > this.maxCredentials) {
      const oldest = this.holds.keys().next().value;
      if (oldest === undefined) break;
      this.holds.delete(oldest);
    }
  }

  private sweep(now: number): void {
    for (const [id, until] of this.holds) {
      if (until <= now) this.holds.delete(id);
    }
  }
}

/** Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from now; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function namesSecondaryLimit(body: Uint8Array | undefined): boolean {
  return body !== undefined && body.byteLength > 0 && body.byteLength < 4096 && /secondary rate limit/i.test(decoder.decode(body));
}

function syntheticAnswer(waitMs: number): { status: number; headers: HeaderMap } {
  return {
    status: 429,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))),
    },
  };
}

function syntheticBody(waitMs: number): Uint8Array {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new TextEncoder().encode(
    JSON.stringify({
      message: `You have exceeded a secondary rate limit. The mirror holds this credential's requests for ${seconds} more seconds instead of sending them to GitHub.`,
      code: 'SECONDARY_RATE_LIMITED',
      documentation_url: SECONDARY_DOCS,
    }),
  );
}
