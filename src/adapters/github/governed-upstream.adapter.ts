/**
 * The outermost UpstreamPort decorator: every call that is about to leave for GitHub asks the upstream
 * governor for a turn first (GitHub's secondary rate limits, per credential, shared by the fleet), and
 * GitHub's "wait" answers become holds the whole fleet honours.
 *
 * - Admitted: the call goes on; its turn is given back when the answer has been read (a streamed body:
 *   when the stream closes). A call that never reached GitHub (upstream breaker open) gives its points back.
 * - Held: after a 429, or a 403 carrying Retry-After (or naming a secondary rate limit), the credential's
 *   calls are not sent until the wait is over; the decorator answers a synthetic 429 with the
 *   Retry-After still to wait, so the GET flow serves RATE_LIMITED_HIT from the cache or passes the 429
 *   on (RATE_LIMITED_MISS), and pass-through requests get the 429 too. Retrying during the wait is what
 *   GitHub punishes with longer bans.
 * - Refused (waited upstream.governor.maxWaitMs): rejects with GOVERNOR_WAIT_EXCEEDED; the GET flow
 *   serves the cached body (RATE_LIMITED_HIT) or a 429 JSON with Retry-After.
 *
 * Credentials are told apart by a keyed hash of the Authorization header (anonymous requests share one
 * partition: GitHub limits them per address, and they all leave from the mirror's).
 */
import { Readable } from 'node:stream';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../domain/ports/upstream.port.js';
import type { ClockPort } from '../../domain/ports/clock.port.js';
import { governedCall, type Admission, type GovernorPermit, type GovernorPort } from '../../domain/ports/governor.port.js';
import type { HeaderMap } from '../../domain/model.js';
import { firstValue } from '../../domain/http-semantics.js';
import { ErrorCode, GovernorWaitExceeded, isMirrorError } from '../../domain/errors.js';

export interface GovernedUpstreamOptions {
  /** Upper bound on a hold, whatever Retry-After or x-ratelimit-reset say (default 3600 s). */
  maxHoldSeconds?: number;
  /** Hold after a 429, or a 403 that names a secondary rate limit, without Retry-After (default 60 s, as GitHub advises). */
  defaultHoldSeconds?: number;
}

/** Hashes a credential (KeyHasherPort.partitionOf fits): the decorator never keeps an Authorization value in clear. */
export interface CredentialHasher {
  partitionOf(credential: string | undefined): string;
}

interface Closable {
  close?(): Promise<void>;
  destroy?(): Promise<void>;
}

const SECONDARY_DOCS = 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits';
const decoder = new TextDecoder();

export class GovernedUpstream implements UpstreamPort {
  private readonly maxHoldMs: number;
  private readonly defaultHoldMs: number;

  constructor(
    private readonly inner: UpstreamPort & Closable,
    private readonly hasher: CredentialHasher,
    private readonly clock: ClockPort,
    private readonly governor: GovernorPort,
    options: GovernedUpstreamOptions = {},
  ) {
    this.maxHoldMs = (options.maxHoldSeconds ?? 3600) * 1000;
    this.defaultHoldMs = (options.defaultHoldSeconds ?? 60) * 1000;
  }

  async fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    const partition = this.partitionOf(request.headers);
    const call = governedCall(partition, request.method);
    const turn = this.turnOf(this.governor.admitNow?.(call) ?? (await this.governor.acquire(call)));
    if (typeof turn === 'number') return { ...syntheticAnswer(turn), body: syntheticBody(turn), held: true };
    let response: BufferedResponse;
    try {
      response = await this.inner.fetch(request);
    } catch (error) {
      turn.release(reachedGitHub(error));
      throw error;
    }
    turn.release(true);
    const holdMs = this.holdFor(response.status, response.headers, response.body);
    if (holdMs !== undefined) await this.hold(partition, holdMs);
    return response;
  }

  async forward(request: UpstreamRequest): Promise<StreamedResponse> {
    const partition = this.partitionOf(request.headers);
    const call = governedCall(partition, request.method);
    const turn = this.turnOf(this.governor.admitNow?.(call) ?? (await this.governor.acquire(call)));
    if (typeof turn === 'number') return { ...syntheticAnswer(turn), body: Readable.from([Buffer.from(syntheticBody(turn))]), held: true };
    let response: StreamedResponse;
    try {
      response = await this.inner.forward(request);
    } catch (error) {
      turn.release(reachedGitHub(error));
      throw error;
    }
    releaseWhenClosed(response.body, () => turn.release(true));
    const holdMs = this.holdFor(response.status, response.headers, undefined);
    if (holdMs !== undefined) await this.hold(partition, holdMs);
    return response;
  }

  async close(): Promise<void> {
    await this.governor.close();
    await this.inner.close?.();
  }

  async destroy(): Promise<void> {
    await this.governor.close();
    await this.inner.destroy?.();
  }

  /**
   * A permit, or the ms a held credential still has to wait; throws GOVERNOR_WAIT_EXCEEDED. The
   * governor's answer comes at once when it can (admitNow: no promise, no turn of the event loop).
   */
  private turnOf(admission: Admission): GovernorPermit | number {
    if (admission.kind === 'admitted') return admission.permit;
    if (admission.kind === 'held') return Math.max(1, admission.retryAfterMs);
    throw new GovernorWaitExceeded(Math.max(1, Math.ceil(admission.retryAfterMs / 1000)));
  }

  private partitionOf(headers: HeaderMap): string {
    const authorization = firstValue(headers['authorization']);
    return this.hasher.partitionOf(authorization === undefined || authorization === '' ? undefined : authorization);
  }

  /** GitHub asked the credential to wait (holdFor): the fleet holds it, up to maxHoldSeconds. */
  private async hold(partition: string, holdMs: number): Promise<void> {
    if (holdMs > 0) await this.governor.hold(partition, Math.min(holdMs, this.maxHoldMs));
  }

  /**
   * How long GitHub asked the credential to wait: Retry-After on a 429/403; else, for a 429 or a 403
   * naming a secondary limit, until x-ratelimit-reset when x-ratelimit-remaining is 0, otherwise 60 s.
   * A primary limit alone (403, remaining 0, no Retry-After) is not held: it is per resource bucket
   * (core, search, ...), and GitHub's answer, passed on, carries its reset.
   */
  private holdFor(status: number, headers: HeaderMap, body: Uint8Array | undefined): number | undefined {
    if (status !== 429 && status !== 403) return undefined;
    const now = this.clock.now();
    const retryAfter = parseRetryAfter(firstValue(headers['retry-after']), now);
    if (retryAfter !== undefined) return retryAfter;
    if (status !== 429 && !namesSecondaryLimit(body)) return undefined;
    const reset = firstValue(headers['x-ratelimit-reset']);
    if (firstValue(headers['x-ratelimit-remaining']) === '0' && reset !== undefined && /^\d+$/.test(reset.trim())) {
      const untilReset = Number(reset.trim()) * 1000 - now;
      if (untilReset > 0) return untilReset;
    }
    return this.defaultHoldMs;
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

/** A call that failed before anything was sent (the upstream breaker was open) did not reach GitHub. */
function reachedGitHub(error: unknown): boolean {
  return !isMirrorError(error, ErrorCode.UPSTREAM_OFFLINE);
}

/** Calls `done` once a streamed body has closed (read to the end, failed or destroyed); at once for anything else. */
function releaseWhenClosed(body: AsyncIterable<Uint8Array>, done: () => void): void {
  if (!(body instanceof Readable) || body.closed || body.destroyed) {
    done();
    return;
  }
  body.once('close', done);
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
