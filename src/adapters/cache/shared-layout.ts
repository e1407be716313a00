/**
 * The shared storage layout (docs/architecture.md, "Storage layout"): names and value encodings that
 * the memory cache, Redis and snapshots all use when bodies are shared across credentials.
 *
 * Names (Redis adds its key prefix), all three of one resource with the same hash tag, so one Redis
 * Cluster slot holds them and a lookup reads entry and body in one round trip:
 *   {<resourceKey>}e:<key>     a credential's entry: "P1", the body id (40 hex), then the entry codec's
 *                              bytes without the body, sealed with the credential's seal key
 *                              (AAD: name + NUL + body id)
 *   {<resourceKey>}b:<bodyId>  a body, stored once per resource: the entry codec's bytes of the
 *                              representation (status, the resource's headers, body), sealed with a
 *                              key derived from cache.secret and the body id (AAD: name)
 *   {<resourceKey>}i           the resource's index: "I1", then up to INDEX_MAX records of body id
 *                              (40 hex) + validatedAt (12 hex digits, epoch ms), most recent first
 *   {<resourceKey>}n           Redis only: a hash counting the entries that point at each body, so the
 *                              last one to leave a body deletes it (not part of snapshots)
 */
import type { CachedEntry, StoredRepresentation } from '../../domain/model.js';
import { resourceHeaders } from '../../domain/http-semantics.js';
import { BODY_ID_LENGTH, type BodyKeys } from '../crypto/body-keys.js';
import { isSealed, open, seal, SealError } from '../crypto/entry-sealer.js';
import { CODEC_VERSION, CorruptEntryError, CorruptReason, encodeEntry, tryDecodeEntry, type EncodeOptions } from './entry-codec.js';

/**
 * CacheDumpPort.entryFormat of a cache in this layout: a snapshot restores only into a cache of the
 * same layout (a per-credential snapshot, "mirror-entry-v1", holds entries this layout never looks up).
 */
export const SHARED_ENTRY_FORMAT = `mirror-entry-v${CODEC_VERSION}/bodies-shared-across-credentials`;

/** Bodies an index remembers per resource. */
export const INDEX_MAX = 8;
export const POINTER_MAGIC = 'P1';
export const INDEX_MAGIC = 'I1';
const TIME_DIGITS = 12;
export const INDEX_RECORD_LENGTH = BODY_ID_LENGTH + TIME_DIGITS;
const EMPTY = new Uint8Array(0);
const BODY_ID = /^[0-9a-f]{40}$/;

export const sharedName = {
  entry: (resourceKey: string, key: string): string => `{${resourceKey}}e:${key}`,
  body: (resourceKey: string, bodyId: string): string => `{${resourceKey}}b:${bodyId}`,
  index: (resourceKey: string): string => `{${resourceKey}}i`,
  /** Redis only: a hash of body id → entries pointing at it (bookkeeping, never dumped). */
  counts: (resourceKey: string): string => `{${resourceKey}}n`,
  /** The common start of a resource's names (Redis: hash tag and what follows). */
  group: (resourceKey: string): string => `{${resourceKey}}`,
};

export type SharedName =
  | { kind: 'entry'; resourceKey: string; key: string }
  | { kind: 'body'; resourceKey: string; bodyId: string }
  | { kind: 'index'; resourceKey: string };

/** What a name of the shared layout names; undefined for a per-credential key. */
export function parseSharedName(name: string): SharedName | undefined {
  if (!name.startsWith('{')) return undefined;
  const close = name.indexOf('}');
  if (close <= 1) return undefined;
  const resourceKey = name.slice(1, close);
  const rest = name.slice(close + 1);
  if (rest === 'i') return { kind: 'index', resourceKey };
  if (rest.startsWith('e:') && rest.length > 2) return { kind: 'entry', resourceKey, key: rest.slice(2) };
  if (rest.startsWith('b:') && BODY_ID.test(rest.slice(2))) return { kind: 'body', resourceKey, bodyId: rest.slice(2) };
  return undefined;
}

function pointerAad(name: string, bodyId: string): string {
  return `${name}\u0000${bodyId}`;
}

/**
 * A credential's entry in the shared layout: its own fields (`entry`'s body is not written: give it
 * the own entry, ownEntry()), and the id of the body it points at.
 */
export function writePointer(name: string, entry: CachedEntry, bodyId: string, sealKey: Uint8Array | undefined): Buffer {
  const meta = encodeEntry({ ...entry, body: EMPTY }, { compression: 'none' });
  const payload = sealKey === undefined ? meta : seal(meta, sealKey, pointerAad(name, bodyId));
  return Buffer.concat([Buffer.from(POINTER_MAGIC + bodyId, 'latin1'), payload]);
}

/** The body id a pointer names, readable without any key (Redis' lookup script reads it too). */
export function pointerBodyId(value: Uint8Array): string | undefined {
  if (value.byteLength < 2 + BODY_ID_LENGTH) return undefined;
  const head = Buffer.from(value.buffer, value.byteOffset, 2 + BODY_ID_LENGTH).toString('latin1');
  if (!head.startsWith(POINTER_MAGIC)) return undefined;
  const id = head.slice(2);
  return BODY_ID.test(id) ? id : undefined;
}

export type PointerResult = { ok: true; entry: CachedEntry; bodyId: string } | { ok: false; error: CorruptEntryError };

/** Opens a pointer (its entry comes back with an empty body: join it with its body). */
export function readPointer(value: Uint8Array, name: string, sealKey: Uint8Array | undefined): PointerResult {
  const bodyId = pointerBodyId(value);
  if (bodyId === undefined) return { ok: false, error: new CorruptEntryError(CorruptReason.FOREIGN, 'not a shared entry') };
  const payload = value.subarray(2 + BODY_ID_LENGTH);
  const sealed = isSealed(payload);
  let plain: Uint8Array = payload;
  if (sealKey === undefined) {
    if (sealed) return { ok: false, error: new CorruptEntryError(CorruptReason.ENCRYPTED, 'sealed entry looked up without a seal key') };
  } else {
    if (!sealed) return { ok: false, error: new CorruptEntryError(CorruptReason.UNSEALED, 'unsealed entry refused: a seal key was given') };
    try {
      plain = open(payload, sealKey, pointerAad(name, bodyId));
    } catch (err) {
      if (!(err instanceof SealError)) throw err;
      return { ok: false, error: new CorruptEntryError(CorruptReason.SEAL, 'sealed entry does not open with this key', { cause: err }) };
    }
  }
  const decoded = tryDecodeEntry(plain);
  return decoded.ok ? { ok: true, entry: decoded.entry, bodyId } : decoded;
}

/** The representation a body record keeps: the entry without the credential's own headers and ETag. */
export function representationOf(entry: CachedEntry): CachedEntry {
  const rep: CachedEntry = { status: entry.status, headers: resourceHeaders(entry.headers), body: entry.body, storedAt: entry.storedAt, validatedAt: entry.validatedAt };
  if (entry.lastModified !== undefined) rep.lastModified = entry.lastModified;
  if (entry.arrayLength !== undefined) rep.arrayLength = entry.arrayLength;
  if (entry.maxAgeSeconds !== undefined) rep.maxAgeSeconds = entry.maxAgeSeconds;
  return rep;
}

/** A body record, always sealed (under the secret-derived key of its id). */
export function writeBody(name: string, entry: CachedEntry, bodyId: string, keys: BodyKeys, codec?: EncodeOptions): Buffer {
  return seal(encodeEntry(representationOf(entry), codec), keys.sealKeyOf(bodyId), name);
}

export type BodyResult = { ok: true; entry: CachedEntry } | { ok: false; error: CorruptEntryError };

/** Opens a body record and checks that its bytes are the body its id names. */
export function readBody(value: Uint8Array, name: string, bodyId: string, keys: BodyKeys): BodyResult {
  let plain: Buffer;
  try {
    plain = open(value, keys.sealKeyOf(bodyId), name);
  } catch (err) {
    if (!(err instanceof SealError)) throw err;
    return { ok: false, error: new CorruptEntryError(CorruptReason.SEAL, 'shared body does not open with this secret', { cause: err }) };
  }
  const decoded = tryDecodeEntry(plain);
  if (!decoded.ok) return decoded;
  if (!keys.matches(bodyId, decoded.entry.body)) return { ok: false, error: new CorruptEntryError(CorruptReason.BODY, 'shared body does not match its id') };
  return decoded;
}

/**
 * The headers an entry keeps of its own: those its body record does not give it already (the
 * credential's own — ETag, scopes — and any that differ). The resource's headers are stored once,
 * with the body: 100 tokens reading one resource keep one copy of its Link, Vary, Cache-Control…
 */
export function ownHeaders(headers: Record<string, string>, base: Record<string, string>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name] as string;
    if (base[name] !== value) own[name] = value;
  }
  return own;
}

/** What an entry keeps in the shared layout: its own fields and headers, no body. */
export function ownEntry(entry: CachedEntry, base: Record<string, string>): CachedEntry {
  return { ...entry, headers: ownHeaders(entry.headers, base), body: EMPTY };
}

/**
 * A pointer's entry with its body joined in: the resource's headers, the entry's own over them (on
 * every lookup). Copied key by key: V8 gives each object made by a spread that then has keys
 * overwritten (an entry's own etag over the resource's) a hidden class of its own.
 */
export function joinBody(entry: CachedEntry, body: CachedEntry): CachedEntry {
  const headers: Record<string, string> = {};
  for (const name in body.headers) headers[name] = body.headers[name] as string;
  for (const name in entry.headers) headers[name] = entry.headers[name] as string;
  const joined = {} as Record<string, unknown>;
  for (const field in entry) joined[field] = (entry as unknown as Record<string, unknown>)[field];
  joined['headers'] = headers;
  joined['body'] = body.body;
  return joined as unknown as CachedEntry;
}

export interface IndexRecord {
  bodyId: string;
  validatedAt: number;
}

/** One index record as Redis' store script prepends it. */
export function indexRecord(bodyId: string, validatedAt: number): string {
  const time = Math.max(0, Math.min(Math.floor(validatedAt), 16 ** TIME_DIGITS - 1));
  return bodyId + time.toString(16).padStart(TIME_DIGITS, '0');
}

export function parseIndex(value: Uint8Array | string | undefined): IndexRecord[] {
  if (value === undefined) return [];
  const text = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1');
  if (!text.startsWith(INDEX_MAGIC)) return [];
  const records: IndexRecord[] = [];
  for (let at = INDEX_MAGIC.length; at + INDEX_RECORD_LENGTH <= text.length; at += INDEX_RECORD_LENGTH) {
    const bodyId = text.slice(at, at + BODY_ID_LENGTH);
    const validatedAt = Number.parseInt(text.slice(at + BODY_ID_LENGTH, at + INDEX_RECORD_LENGTH), 16);
    if (BODY_ID.test(bodyId) && Number.isFinite(validatedAt)) records.push({ bodyId, validatedAt });
  }
  return records;
}

/** The index with `bodyId` moved (or added) to the front, at most INDEX_MAX records. */
export function withIndexRecord(records: readonly IndexRecord[], bodyId: string, validatedAt: number): IndexRecord[] {
  const next = [{ bodyId, validatedAt }, ...records.filter((r) => r.bodyId !== bodyId)];
  return next.slice(0, INDEX_MAX);
}

export function writeIndex(records: readonly IndexRecord[]): Buffer {
  return Buffer.from(INDEX_MAGIC + records.map((r) => indexRecord(r.bodyId, r.validatedAt)).join(''), 'latin1');
}

/** A body record's representation as the use case sees it, dated by the index. */
export function storedRepresentation(body: CachedEntry, validatedAt: number): StoredRepresentation {
  const rep: StoredRepresentation = { status: body.status, headers: { ...body.headers }, body: body.body, validatedAt };
  if (body.lastModified !== undefined) rep.lastModified = body.lastModified;
  if (body.arrayLength !== undefined) rep.arrayLength = body.arrayLength;
  if (body.maxAgeSeconds !== undefined) rep.maxAgeSeconds = body.maxAgeSeconds;
  return rep;
}
