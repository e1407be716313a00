/**
 * The pass-through use case: methods that are not cached, streamed to GitHub and back. An upstream
 * that cannot be reached is reported as the mirror's own failure (a code, no status).
 */
import type { HeaderMap, Outcome } from '../model.js';
import { Outcome as O } from '../model.js';
import type { UpstreamPort } from '../ports/upstream.port.js';
import type { ClockPort } from '../ports/clock.port.js';
import type { EventBusPort } from '../ports/event-bus.port.js';
import { EventName } from '../events/events.js';
import { ErrorCode, isMirrorError, type MirrorFailure } from '../errors.js';
import { firstValue, relayableHeaders } from '../http-semantics.js';
import { countsAgainstQuota } from './resolve-resource.js';
import { classifyUpstreamFailure } from '../upstream-failure.js';

export interface PassThroughRequest {
  method: string;
  target: string;
  /** Client headers, lower-case, hop-by-hop and Host removed. */
  headers: HeaderMap;
  /** The request body: read whole by the edge (a slow client never holds an upstream connection), or streamed. */
  body?: AsyncIterable<Uint8Array> | Uint8Array;
  credential: string | undefined;
}

/** Upstream's answer, relayed as it comes. */
export interface PassedThrough {
  outcome: Outcome;
  status: number;
  headers: Record<string, string>;
  /** Streamed upstream body (content encoding untouched). */
  body: AsyncIterable<Uint8Array>;
  upstreamStatus?: number;
  error?: undefined;
}

/** No answer from upstream: the mirror answers with its own error (the edge picks the status). */
export interface PassThroughFailed {
  outcome: Outcome;
  error: MirrorFailure;
  status?: undefined;
  headers?: undefined;
  body?: undefined;
  upstreamStatus?: undefined;
}

export type PassThroughResult = PassedThrough | PassThroughFailed;

/** Methods that are not cached (POST, PATCH, PUT, DELETE, ...): streamed to GitHub and back, never stored. */
export class PassThrough {
  constructor(
    private readonly upstream: UpstreamPort,
    private readonly events: EventBusPort,
    private readonly clock: ClockPort,
  ) {}

  async execute(request: PassThroughRequest): Promise<PassThroughResult> {
    const started = this.clock.now();
    const userAgent = firstValue(request.headers['user-agent']);
    const upstreamRequest = { method: request.method, target: request.target, headers: request.headers, ...(request.body ? { body: request.body } : {}) };
    try {
      const response = await this.upstream.forward(upstreamRequest);
      const remaining = firstValue(response.headers['x-ratelimit-remaining']);
      const resource = firstValue(response.headers['x-ratelimit-resource']);
      const conditional = request.headers['if-none-match'] !== undefined || request.headers['if-modified-since'] !== undefined;
      const durationMs = this.clock.now() - started;
      if (response.held === true) {
        // the governor kept it back (the credential is held): the mirror's 429, not an upstream call
        this.events.emit({ name: EventName.upstreamCalled, result: 'refused', countedAgainstQuota: false, conditional, durationMs, ...(userAgent !== undefined ? { userAgent } : {}) });
      } else {
        this.events.emit({
          name: EventName.upstreamCalled,
          result: 'ok',
          status: response.status,
          countedAgainstQuota: countsAgainstQuota(response.status, request.credential),
          conditional,
          durationMs,
          ...(remaining ? { rateLimitRemaining: Number(remaining) } : {}),
          ...(resource ? { rateLimitResource: resource } : {}),
          ...(userAgent !== undefined ? { userAgent } : {}),
        });
      }
      const headers = relayableHeaders(response.headers);
      const encoding = firstValue(response.headers['content-encoding']);
      if (encoding !== undefined) headers['content-encoding'] = encoding;
      const length = firstValue(response.headers['content-length']);
      if (length !== undefined && encoding !== undefined) headers['content-length'] = length;
      return { outcome: O.ONLINE_MISS, status: response.status, headers, body: response.body, upstreamStatus: response.status };
    } catch (error) {
      if (isMirrorError(error, ErrorCode.REQUEST_BODY_TOO_LARGE)) throw error;
      const failure = classifyUpstreamFailure(error);
      this.events.emit({
        name: EventName.upstreamCalled,
        result: failure.result,
        countedAgainstQuota: failure.answered && countsAgainstQuota(200, request.credential),
        conditional: false,
        durationMs: this.clock.now() - started,
        ...(userAgent !== undefined ? { userAgent } : {}),
      });
      return { outcome: failure.miss, error: failure.error };
    }
  }
}
