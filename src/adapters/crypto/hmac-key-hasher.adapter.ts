import { createHmac } from 'node:crypto';
import type { KeyHasherPort } from '../../domain/ports/key-hasher.port.js';
import type { ResourceKeyParts } from '../../domain/model.js';

const SEPARATOR = '\u0000';

/**
 * Cache keys as HMAC-SHA256 over the request's identity, keyed with the server secret. The credential
 * only ever enters the hash, so a key in Redis or a snapshot reveals nothing about the token.
 * Key layout: "<partition>:<resource>", both hex, so the entries of one credential share a prefix.
 */
export class HmacKeyHasher implements KeyHasherPort {
  private readonly partitions = new Map<string, string>();

  constructor(private readonly secret: string | Buffer) {}

  keyFor(parts: ResourceKeyParts): string {
    const partition = this.partitionOf(parts.credential);
    const resource = createHmac('sha256', this.secret)
      .update([partition, parts.method, parts.path, parts.query, parts.accept, parts.apiVersion].join(SEPARATOR))
      .digest('hex')
      .slice(0, 40);
    return `${partition}:${resource}`;
  }

  partitionOf(credential: string | undefined): string {
    if (credential === undefined) return 'anon';
    let partition = this.partitions.get(credential);
    if (partition === undefined) {
      partition = createHmac('sha256', this.secret).update('credential').update(SEPARATOR).update(credential).digest('hex').slice(0, 32);
      if (this.partitions.size >= 10_000) this.partitions.clear();
      this.partitions.set(credential, partition);
    }
    return partition;
  }
}
