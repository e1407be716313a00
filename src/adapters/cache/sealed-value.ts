/** Stored values (Redis, snapshot records): entry-codec bytes, sealed per credential when a seal key is given. */
import type { CachedEntry } from '../../domain/model.js';
import { isSealed, open, seal, SealError } from '../crypto/entry-sealer.js';
import { CorruptEntryError, CorruptReason, encodeEntry, tryDecodeEntry, type DecodeResult, type EncodeOptions } from './entry-codec.js';

/**
 * An entry as it is kept outside the process (Redis values, snapshot records): the entry codec's
 * bytes, sealed with AES-256-GCM under the credential-derived seal key, the cache key bound as AAD.
 * Without a seal key (tests, tools) the codec bytes are kept as they are.
 */
export function writeValue(entry: CachedEntry, key: string, sealKey: Uint8Array | undefined, codec?: EncodeOptions): Buffer {
  const encoded = encodeEntry(entry, codec);
  return sealKey === undefined ? encoded : seal(encoded, sealKey, key);
}

/** Open (when sealed) and decode a stored value; every failure is a CorruptEntryError result. */
export function readValue(value: Uint8Array, key: string, sealKey: Uint8Array | undefined): DecodeResult {
  const sealed = isSealed(value);
  if (sealKey === undefined) {
    if (sealed) return { ok: false, error: new CorruptEntryError(CorruptReason.ENCRYPTED, 'sealed entry looked up without a seal key') };
    return tryDecodeEntry(value);
  }
  if (!sealed) return { ok: false, error: new CorruptEntryError(CorruptReason.UNSEALED, 'unsealed entry refused: a seal key was given') };
  let plain: Buffer;
  try {
    plain = open(value, sealKey, key);
  } catch (err) {
    if (!(err instanceof SealError)) throw err;
    return { ok: false, error: new CorruptEntryError(CorruptReason.SEAL, 'sealed entry does not open with this key', { cause: err }) };
  }
  return tryDecodeEntry(plain);
}
