import type { ClockPort } from '../ports/clock.port.js';
import type { KeyHasherPort } from '../ports/key-hasher.port.js';
import type { ResolveRequest } from './resolve-resource.js';
import type { Resolution } from '../resolution.js';
import { ErrorCode, MirrorError } from '../errors.js';
import { Outcome } from '../model.js';

export interface AdmitClientOptions {
  /** GitHub logins allowed to use the mirror (compared case-insensitively). Must not be empty. */
  allowedUsers: readonly string[];
  /** How long a verdict about a credential is kept before GitHub is asked again. */
  validationTtlSeconds: number;
  /** Most verdicts kept at once (default 10 000); the oldest go first. */
  maxEntries?: number;
}

/** Anything that resolves a GET the way ResolveResource does (the cache and its outcomes included). */
export interface ResourceResolver {
  execute(request: ResolveRequest): Promise<Resolution>;
}

/**
 * GitHub's answer to `GET /user` could not admit the client (bad credentials, rate limit, GitHub down
 * and nothing cached): the HTTP edge relays that answer — status, headers, body, X-Cache — as it is,
 * so clients see what GitHub said (a 401 "Bad credentials" stays a 401).
 */
export class UserCheckFailed extends MirrorError {
  constructor(readonly answer: Resolution) {
    super(ErrorCode.USER_CHECK_FAILED, answer.error === undefined ? `GET /user answered ${answer.status}` : `GET /user failed: ${answer.error.code}`);
  }
}

type Verdict = { admitted: true; expiresAt: number } | { admitted: false; expiresAt: number; error: MirrorError };


const USER_CHECK_HEADERS = { accept: 'application/vnd.github+json', 'user-agent': 'github-mirror (allowlist)' };

/**
 * The allowlist (`auth.allowedUsers`): a request needs a credential whose GitHub login is on the list.
 * The login comes from `GET /user` resolved through the cache like any client GET (a 304 revalidation
 * costs no quota). Verdicts are kept per credential hash for a bounded time and in a bounded number,
 * so a revoked token stops working at the latest `validationTtlSeconds` later.
 *
 * When GitHub cannot answer (5xx, timeout, breaker open, rate limit) but a `/user` answer for this very
 * credential is cached, that login is used: the mirror keeps serving allowed users through an outage,
 * as it serves their cached data. With nothing cached, GitHub's (or the mirror's) error answer is
 * relayed as is.
 */
export class AdmitClient {
  private readonly allowed: ReadonlySet<string>;
  private readonly verdicts = new Map<string, Verdict>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(
    private readonly resolver: ResourceResolver,
    private readonly keys: Pick<KeyHasherPort, 'partitionOf'>,
    private readonly clock: ClockPort,
    options: AdmitClientOptions,
  ) {
    this.allowed = new Set(options.allowedUsers.map((login) => login.toLowerCase()));
    this.ttlMs = options.validationTtlSeconds * 1000;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** Number of verdicts currently kept. */
  get size(): number {
    return this.verdicts.size;
  }

  /** Resolves when the client may go on; rejects with a MirrorError (UNAUTHENTICATED, FORBIDDEN_USER, USER_CHECK_FAILED) otherwise. */
  async execute(credential: string | undefined): Promise<void> {
    if (credential === undefined || credential === '') {
      throw new MirrorError(ErrorCode.UNAUTHENTICATED, 'This mirror needs a GitHub token: send an Authorization header');
    }
    const id = this.keys.partitionOf(credential);
    const now = this.clock.now();
    const known = this.verdicts.get(id);
    if (known !== undefined) {
      if (known.expiresAt > now) {
        if (known.admitted) return;
        throw known.error;
      }
      this.verdicts.delete(id);
    }
    const answer = await this.resolver.execute({
      method: 'GET',
      target: '/user',
      path: '/user',
      query: '',
      headers: { ...USER_CHECK_HEADERS, authorization: credential },
      credential,
    });
    const verdict = this.judge(answer);
    if (verdict.keep) this.remember(id, verdict.error === undefined ? { admitted: true, expiresAt: now + this.ttlMs } : { admitted: false, expiresAt: now + this.ttlMs, error: verdict.error });
    if (verdict.error !== undefined) throw verdict.error;
  }

  private judge(answer: Resolution): { keep: boolean; error?: MirrorError } {
    if (answer.status !== 200) {
      // GitHub refused the credential (kept: asking again will not change it before the TTL), or could
      // not be asked and nothing is cached (not kept: the next request asks again).
      return { keep: refusesCredential(answer), error: new UserCheckFailed(answer) };
    }
    const login = loginOf(answer.body);
    if (login === undefined) {
      return { keep: false, error: new MirrorError(ErrorCode.FORBIDDEN_USER, 'GitHub did not name a user for this token') };
    }
    if (!this.allowed.has(login.toLowerCase())) {
      return { keep: true, error: new MirrorError(ErrorCode.FORBIDDEN_USER, 'This GitHub user may not use this mirror') };
    }
    return { keep: true };
  }

  private remember(id: string, verdict: Verdict): void {
    this.verdicts.delete(id);
    this.verdicts.set(id, verdict);
    if (this.verdicts.size <= this.maxEntries) return;
    const now = this.clock.now();
    for (const [key, value] of this.verdicts) {
      if (value.expiresAt <= now) this.verdicts.delete(key);
    }
    while (this.verdicts.size > this.maxEntries) {
      const oldest = this.verdicts.keys().next().value;
      if (oldest === undefined) break;
      this.verdicts.delete(oldest);
    }
  }
}

const decoder = new TextDecoder();

/** GitHub itself refused this credential (401, or a 403 that is not a rate limit): asking again before the TTL would not change it. */
function refusesCredential(answer: Resolution): boolean {
  return answer.status === 401 || (answer.status === 403 && answer.outcome === Outcome.ONLINE_MISS);
}

function loginOf(body: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(decoder.decode(body));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const login = (parsed as { login?: unknown }).login;
    return typeof login === 'string' && login !== '' ? login : undefined;
  } catch {
    return undefined;
  }
}
