import CircuitBreaker from 'opossum';
import type { UpstreamPort, UpstreamRequest, BufferedResponse, StreamedResponse } from '../../domain/ports/upstream.port.js';
import type { EventBusPort } from '../../domain/ports/event-bus.port.js';
import { EventName } from '../../domain/events/events.js';
import { ErrorCode, MirrorError, isMirrorError } from '../../domain/errors.js';

export interface UpstreamBreakerOptions {
  /** Percentage of failed calls in the rolling window that opens the breaker. */
  errorThresholdPercentage: number;
  /** Calls needed in the rolling window before the breaker may open. */
  volumeThreshold: number;
  /** Time the breaker stays open before the background probe is sent. */
  resetTimeoutMs: number;
  /** Length of the rolling window of call statistics (default 10 s). */
  rollingWindowMs?: number;
  /**
   * Path (relative to the upstream base URL) of the probe sent, without credentials, when the breaker
   * half-opens. Default `/rate_limit`: cheap, never counted against a quota, present on github.com and
   * GitHub Enterprise Server alike. Any answer below 500 means the upstream is up (a 404 from an
   * Enterprise Server with rate limiting turned off included).
   */
  probePath?: string;
}

export type UpstreamBreakerState = 'closed' | 'open' | 'half_open';

/** What a decorated upstream may also offer; the breaker passes it down. */
interface Closable {
  close?(): Promise<void>;
  destroy?(): Promise<void>;
}

/** What a guarded call does: the client's fetch or forward, or the breaker's own probe (a fetch). */
type Kind = 'fetch' | 'forward';

/** An HTTP answer that counts as a failure of the upstream (5xx), carried through opossum as an error. */
class ServerFailure extends Error {
  constructor(readonly answer: BufferedResponse | StreamedResponse) {
    super(`upstream answered ${answer.status}`);
  }
}

const PROBE_HEADERS = { 'user-agent': 'github-mirror (upstream probe)', accept: 'application/vnd.github+json' };

/**
 * UpstreamPort decorator: one opossum circuit breaker in front of GitHub. Timeouts, connection errors
 * and 5xx answers count as failures; when enough of them pile up the breaker opens and every call
 * rejects at once with UPSTREAM_OFFLINE (the use cases answer OFFLINE_HIT from the cache or
 * OFFLINE_MISS) instead of waiting for a timeout. After `resetTimeoutMs` the breaker half-opens and
 * sends one anonymous probe itself; an answer below 500 closes it, anything else opens it again.
 * No status page is polled, so this works the same for GitHub Enterprise.
 */
export class UpstreamBreaker implements UpstreamPort {
  private readonly breaker: CircuitBreaker<[Kind, UpstreamRequest], BufferedResponse | StreamedResponse>;
  private readonly probePath: string;
  private stopped = false;

  constructor(
    private readonly inner: UpstreamPort & Closable,
    private readonly events: EventBusPort,
    options: UpstreamBreakerOptions,
  ) {
    this.probePath = options.probePath ?? '/rate_limit';
    // one action for every call, given its arguments: no closure per call
    this.breaker = new CircuitBreaker<[Kind, UpstreamRequest], BufferedResponse | StreamedResponse>((kind: Kind, request: UpstreamRequest) => this.call(kind, request).then(failOnServerError), {
      // The undici adapter owns timeouts (and aborts the request); opossum never times out on its own.
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeoutMs,
      rollingCountTimeout: options.rollingWindowMs ?? 10_000,
      rollingCountBuckets: 10,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // Failures that say nothing about GitHub's health do not count: a client body too large or
      // broken off (client gone, too slow), an upstream body over our own limit.
      errorFilter: (error: unknown) =>
        isMirrorError(error, ErrorCode.REQUEST_BODY_TOO_LARGE) ||
        isMirrorError(error, ErrorCode.REQUEST_BODY_INCOMPLETE) ||
        isMirrorError(error, ErrorCode.UPSTREAM_BODY_TOO_LARGE),
    });
    this.breaker.on('open', () => this.changed('open'));
    this.breaker.on('close', () => this.changed('closed'));
    this.breaker.on('halfOpen', () => {
      this.changed('half_open');
      this.probe();
    });
  }

  get state(): UpstreamBreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'half_open';
    return 'closed';
  }

  fetch(request: UpstreamRequest): Promise<BufferedResponse> {
    return this.guard('fetch', request) as Promise<BufferedResponse>;
  }

  forward(request: UpstreamRequest): Promise<StreamedResponse> {
    return this.guard('forward', request) as Promise<StreamedResponse>;
  }

  /** Stops the breaker (no timer left behind), then closes the decorated upstream. */
  async close(): Promise<void> {
    this.shutdown();
    await this.inner.close?.();
  }

  async destroy(): Promise<void> {
    this.shutdown();
    await this.inner.destroy?.();
  }

  private shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.breaker.shutdown();
  }

  private call(kind: Kind, request: UpstreamRequest): Promise<BufferedResponse | StreamedResponse> {
    return kind === 'fetch' ? this.inner.fetch(request) : this.inner.forward(request);
  }

  private async guard(kind: Kind, request: UpstreamRequest): Promise<BufferedResponse | StreamedResponse> {
    if (this.stopped) return this.call(kind, request);
    try {
      return await this.breaker.fire(kind, request);
    } catch (error) {
      if (error instanceof ServerFailure) return error.answer;
      if (isOpenRejection(error)) {
        throw new MirrorError(ErrorCode.UPSTREAM_OFFLINE, 'GitHub is unreachable; the mirror is answering offline', { cause: error });
      }
      if (isShutdownRejection(error)) return this.call(kind, request);
      throw error;
    }
  }

  /** The half-open trial: an anonymous GET of a cheap path, sent by the mirror itself. */
  private probe(): void {
    this.breaker
      .fire('fetch', { method: 'GET', target: this.probePath, headers: { ...PROBE_HEADERS } })
      // A failed probe has already re-opened the breaker (and re-armed its timer); a rejected one
      // means a client request took the trial slot first. Nothing else to do either way.
      .catch(() => undefined);
  }

  private changed(state: UpstreamBreakerState): void {
    this.events.emit({ name: EventName.breakerChanged, breaker: 'upstream', state });
  }
}

/** A 5xx answer goes through opossum as a failure (ServerFailure), to be handed back as the answer it is. */
function failOnServerError<T extends BufferedResponse | StreamedResponse>(answer: T): T {
  if (isServerFailure(answer.status)) throw new ServerFailure(answer);
  return answer;
}

/** 5xx answers say GitHub is failing; 501 (method not implemented) and 505 are answers about the request. */
function isServerFailure(status: number): boolean {
  return status >= 500 && status !== 501 && status !== 505;
}

function isOpenRejection(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EOPENBREAKER';
}

function isShutdownRejection(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ESHUTDOWN';
}
