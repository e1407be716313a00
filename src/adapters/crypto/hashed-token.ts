/**
 * The `hashed_token` of the access log: base64(SHA-256(token)), the form GitHub's audit log names a
 * token by, so an operator can match the mirror's traffic to GitHub's audit log. The token is the
 * Authorization value without its `token ` / `Bearer ` scheme. Computed once per credential
 * (memoised, bounded); the token itself never leaves this file.
 */
import { createHash } from 'node:crypto';

/** Credentials remembered; past this many the oldest is forgotten (and hashed again if it comes back). */
export const MAX_HASHED_TOKENS = 1024;

const SCHEME = /^(?:token|bearer)\s+(\S+)\s*$/i;

export class HashedTokens {
  /** Authorization value → hashed token, or '' when it carries no token (Basic, unknown scheme). */
  private readonly memo = new Map<string, string>();

  constructor(private readonly max = MAX_HASHED_TOKENS) {}

  /** base64(SHA-256(token)) of an Authorization value; undefined when there is none or it is not a token/Bearer credential. */
  of(authorization: string | undefined): string | undefined {
    if (authorization === undefined || authorization === '') return undefined;
    let hashed = this.memo.get(authorization);
    if (hashed === undefined) {
      hashed = hashAuthorization(authorization) ?? '';
      if (this.memo.size >= this.max) {
        const oldest = this.memo.keys().next().value;
        if (oldest !== undefined) this.memo.delete(oldest);
      }
      this.memo.set(authorization, hashed);
    }
    return hashed === '' ? undefined : hashed;
  }

  /** Credentials remembered now (tests). */
  get size(): number {
    return this.memo.size;
  }
}

/** base64(SHA-256(token)) as GitHub's audit log has it. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64');
}

function hashAuthorization(authorization: string): string | undefined {
  const match = SCHEME.exec(authorization);
  return match === null ? undefined : hashToken(match[1] as string);
}
