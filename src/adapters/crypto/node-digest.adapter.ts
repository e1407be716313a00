/** DigestPort over node:crypto. */
import { createHash } from 'node:crypto';
import type { DigestPort } from '../../domain/ports/digest.port.js';

export class NodeDigest implements DigestPort {
  sha256Hex(chunks: readonly (string | Uint8Array)[]): string {
    const hash = createHash('sha256');
    for (const chunk of chunks) hash.update(chunk);
    return hash.digest('hex');
  }
}

export const nodeDigest: DigestPort = new NodeDigest();
