import type { ResourceKeyParts } from '../model.js';

/**
 * Turns the parts of a request into a cache key. Implementations hash the credential with a server
 * secret: a credential is never stored, logged or exported in clear.
 */
export interface KeyHasherPort {
  keyFor(parts: ResourceKeyParts): string;
  /**
   * The key of the resource itself, the same for every credential (method, path, raw query, Accept,
   * API version; no credential): it groups the credentials' entries and the bodies they share.
   */
  resourceKeyFor(parts: Omit<ResourceKeyParts, 'credential'>): string;
  /** A short stable identifier of a credential's partition (for logs and coalescing), never the credential. */
  partitionOf(credential: string | undefined): string;
  /**
   * 32 bytes of key material for sealing this credential's entries at rest, derived from the
   * credential and the server secret (anonymous entries: from the server secret alone).
   */
  sealKeyFor(credential: string | undefined): Uint8Array;
}
