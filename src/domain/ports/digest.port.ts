/**
 * SHA-256 for the domain, which may not import node:crypto: the adapter
 * (src/adapters/crypto/node-digest.adapter.ts) hashes, the domain says what (GitHub's ETag formula,
 * src/domain/github-etag.ts).
 */
export interface DigestPort {
  /** Hex SHA-256 of the chunks, in order, as if they were one byte string (strings as UTF-8). */
  sha256Hex(chunks: readonly (string | Uint8Array)[]): string;
}
