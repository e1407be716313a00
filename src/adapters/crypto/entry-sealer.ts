import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of entry bytes at rest (Redis values, snapshot records).
 * Layout: [0x53 'S'][version 0x01][12-byte IV][16-byte tag][ciphertext].
 * The cache key is bound as additional authenticated data, so a sealed value moved under another
 * key (or forged without the credential-derived key) does not open.
 */
const MAGIC = 0x53;
const VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 2 + IV_BYTES + TAG_BYTES;

export class SealError extends Error {
  override readonly name = 'SealError';
}

export function seal(plain: Uint8Array, key: Uint8Array, aad: string): Buffer {
  if (key.byteLength !== 32) throw new SealError('seal key must be 32 bytes');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head[0] = MAGIC;
  head[1] = VERSION;
  iv.copy(head, 2);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  cipher.getAuthTag().copy(head, 2 + IV_BYTES);
  return Buffer.concat([head, body], HEADER_BYTES + body.byteLength);
}

/** Opens a sealed value; throws SealError when it is not ours, tampered with, or sealed with another key. */
export function open(sealed: Uint8Array, key: Uint8Array, aad: string): Buffer {
  if (sealed.byteLength < HEADER_BYTES || sealed[0] !== MAGIC) throw new SealError('not a sealed entry');
  if (sealed[1] !== VERSION) throw new SealError(`unknown seal version ${sealed[1]}`);
  if (key.byteLength !== 32) throw new SealError('seal key must be 32 bytes');
  const buffer = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key, buffer.subarray(2, 2 + IV_BYTES));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(buffer.subarray(2 + IV_BYTES, HEADER_BYTES));
  try {
    return Buffer.concat([decipher.update(buffer.subarray(HEADER_BYTES)), decipher.final()]);
  } catch (error) {
    throw new SealError('sealed entry failed authentication', { cause: error });
  }
}

export function isSealed(value: Uint8Array): boolean {
  return value.byteLength >= HEADER_BYTES && value[0] === MAGIC;
}
