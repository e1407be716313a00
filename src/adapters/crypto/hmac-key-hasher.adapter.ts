import { createHmac, hkdfSync } from 'node:crypto';
import type { KeyHasherPort } from '../../domain/ports/key-hasher.port.js';
import type { ResourceKeyParts } from '../../domain/model.js';

const SEPARATOR = '\u0000';
const MAX_MEMO = 10_000;

interface CredentialKeys {
  partition: string;
  sealKey: Uint8Array;
}

/**
 * Cache keys as HMAC-SHA256 over the request's identity, keyed with the server secret. The credential
 * only ever enters the hash, so a key in Redis or a snapshot reveals nothing about the token.
 * Key layout: "<partition>:<resource>", both hex, so the entries of one credential share a prefix; the
 * resource key (no credential) groups every credential's entry of one resource and the bodies they share.
 * Seal keys (entry encryption at rest) come from HKDF over the credential, salted with the secret:
 * without the token, a stored entry cannot be opened even by someone who has the server secret.
 */
export class HmacKeyHasher implements KeyHasherPort {
  private readonly memo = new Map<string, CredentialKeys>();
  /** Cache keys by request identity (partition, never the credential, plus the keyed parts): one HMAC per resource, not per request. */
  private readonly keys = new Map<string, string>();
  private readonly anonymous: CredentialKeys;

  constructor(private readonly secret: string | Buffer) {
    this.anonymous = {
      partition: 'anon',
      sealKey: new Uint8Array(hkdfSync('sha256', secret, 'github-mirror/anonymous', 'github-mirror entry seal v1', 32)),
    };
  }

  keyFor(parts: ResourceKeyParts): string {
    const partition = this.partitionOf(parts.credential);
    const identity = [partition, parts.method, parts.path, parts.query, parts.accept, parts.apiVersion].join(SEPARATOR);
    let key = this.keys.get(identity);
    if (key === undefined) {
      key = `${partition}:${createHmac('sha256', this.secret).update(identity).digest('hex').slice(0, 40)}`;
      if (this.keys.size >= MAX_MEMO) this.keys.clear();
      this.keys.set(identity, key);
    }
    return key;
  }

  /** HMAC of the request without its credential, hex (40 chars): never contains a hash-tag brace. */
  resourceKeyFor(parts: Omit<ResourceKeyParts, 'credential'>): string {
    // memoised with the cache keys: a partition is hex or "anon", never "resource"
    const identity = ['resource', parts.method, parts.path, parts.query, parts.accept, parts.apiVersion].join(SEPARATOR);
    let key = this.keys.get(identity);
    if (key === undefined) {
      key = createHmac('sha256', this.secret).update(identity).digest('hex').slice(0, 40);
      if (this.keys.size >= MAX_MEMO) this.keys.clear();
      this.keys.set(identity, key);
    }
    return key;
  }

  partitionOf(credential: string | undefined): string {
    return this.keysOf(credential).partition;
  }

  sealKeyFor(credential: string | undefined): Uint8Array {
    return this.keysOf(credential).sealKey;
  }

  private keysOf(credential: string | undefined): CredentialKeys {
    if (credential === undefined) return this.anonymous;
    let keys = this.memo.get(credential);
    if (keys === undefined) {
      keys = {
        partition: createHmac('sha256', this.secret).update('credential').update(SEPARATOR).update(credential).digest('hex').slice(0, 32),
        sealKey: new Uint8Array(hkdfSync('sha256', credential, this.secret, 'github-mirror entry seal v1', 32)),
      };
      if (this.memo.size >= MAX_MEMO) this.memo.clear();
      this.memo.set(credential, keys);
    }
    return keys;
  }
}
