/** The entry codec's failure: why a stored value is not a readable entry (CorruptEntryError, CorruptReason). */
import { ErrorCode } from '../../domain/errors.js';

/** Why a stored value could not be read back as a cache entry. Stable values: they become event reasons. */
export const CorruptReason = {
  /** Not written by this codec (no magic bytes): garbage, another program's value. */
  FOREIGN: 'foreign',
  /** Written by a codec version this one does not read (e.g. a newer mirror during a rolling deploy). */
  VERSION: 'version',
  /** Sealed (encrypted) and looked up without a seal key. */
  ENCRYPTED: 'encrypted',
  /** Sealed, but does not open with the caller's seal key: another credential's, moved, or tampered with. */
  SEAL: 'seal',
  /** Not sealed although the caller asked with a seal key: refused, a plain value could be forged. */
  UNSEALED: 'unsealed',
  /** Flag bits this version does not define. */
  FLAGS: 'flags',
  /** Shorter than its own lengths say. */
  TRUNCATED: 'truncated',
  /** A length or number out of range, or bytes left over. */
  LENGTH: 'length',
  /** The compressed body does not inflate to the length recorded. */
  DECOMPRESS: 'decompress',
  /** A shared body whose bytes are not the body its id names (shared layout). */
  BODY: 'body',
} as const;
export type CorruptReason = (typeof CorruptReason)[keyof typeof CorruptReason];

/** A value under a cache key that is not a readable entry. Adapters turn it into a miss plus an event. */
export class CorruptEntryError extends Error {
  override readonly name = 'CorruptEntryError';
  readonly code = ErrorCode.CACHE_ENTRY_CORRUPT;
  constructor(
    readonly reason: CorruptReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
