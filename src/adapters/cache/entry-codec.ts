/**
 * Binary encoding of a CachedEntry wherever one is kept outside the process: Redis values (through
 * sealed-value.ts) and snapshot records of every backend. Compact, binary-safe, nothing that
 * executes on decode (no pickle, no eval, no JSON reviver), and a version so old and new replicas can
 * tell each other's values apart. The format is described byte by byte in docs/redis.md.
 *
 *   0  'G' 'M'            magic
 *   2  version            0x01
 *   3  flags              bits 0-1 body compression (0 none, 1 brotli, 2 deflate-raw),
 *                         bit 2 etag, bit 3 lastModified, bit 4 arrayLength, bit 5 maxAgeSeconds,
 *                         bits 6-7 reserved (0)
 *   4  status             uint16 BE
 *   6  storedAt           float64 BE (epoch ms)
 *  14  validatedAt        float64 BE (epoch ms)
 *  22  [etag]             varint length + UTF-8
 *      [lastModified]     varint length + UTF-8
 *      [arrayLength]      varint
 *      [maxAgeSeconds]    float64 BE
 *      header count       varint, then per header: varint length + UTF-8 name, varint length + UTF-8 value
 *      body length        varint: the decoded body's length
 *      body               the rest: raw, or compressed as the flags say
 *
 * `encodeEntry` / `decodeEntry` are pure functions of bytes, so the encryption layer
 * (src/adapters/crypto/entry-sealer.ts, AES-256-GCM per credential) wraps them: the Redis adapter
 * seals the encoded bytes and opens them before decoding. Sealed bytes start with 'S', never 'GM'.
 */
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { CachedEntry } from '../../domain/model.js';
import { CorruptEntryError, CorruptReason } from './entry-codec.errors.js';

export { CorruptEntryError, CorruptReason } from './entry-codec.errors.js';

export const MAGIC = Buffer.from('GM', 'latin1');
export const CODEC_VERSION = 1;

export type BodyCompression = 'none' | 'brotli' | 'deflate-raw';

const COMPRESSION_BITS: Record<BodyCompression, number> = { none: 0, brotli: 1, 'deflate-raw': 2 };
const FLAG_COMPRESSION_MASK = 0b0000_0011;
const FLAG_ETAG = 0b0000_0100;
const FLAG_LAST_MODIFIED = 0b0000_1000;
const FLAG_ARRAY_LENGTH = 0b0001_0000;
const FLAG_MAX_AGE = 0b0010_0000;
const FLAG_RESERVED = 0b1100_0000;

const FIXED_BYTES = 22;
/** Largest body a decoder accepts (a corrupt length must not allocate gigabytes). */
export const MAX_BODY_BYTES = 512 * 1024 * 1024;

export interface EncodeOptions {
  /** Algorithm for bodies worth compressing. Default brotli (quality 1); see docs/redis.md for the measurement. */
  compression?: BodyCompression;
  /** Bodies shorter than this are stored raw. Default 256 bytes. */
  minCompressBytes?: number;
  /** The compressed body is kept only when at most this fraction of the raw one. Default 0.875. */
  maxCompressedRatio?: number;
}

export const DEFAULT_ENCODE_OPTIONS: Required<EncodeOptions> = {
  compression: 'brotli',
  minCompressBytes: 256,
  maxCompressedRatio: 0.875,
};

function compress(body: Uint8Array, algorithm: BodyCompression): Buffer {
  if (algorithm === 'brotli') {
    return brotliCompressSync(body, {
      params: {
        [zlibConstants.BROTLI_PARAM_QUALITY]: 1,
        [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
      },
    });
  }
  return deflateRawSync(body, { level: 6 });
}

/** The body as it will be stored: compressed when it pays, with the compression used. */
export function chooseBodyEncoding(body: Uint8Array, options: EncodeOptions = {}): { bytes: Uint8Array; compression: BodyCompression } {
  const algorithm = options.compression ?? DEFAULT_ENCODE_OPTIONS.compression;
  const minBytes = options.minCompressBytes ?? DEFAULT_ENCODE_OPTIONS.minCompressBytes;
  const maxRatio = options.maxCompressedRatio ?? DEFAULT_ENCODE_OPTIONS.maxCompressedRatio;
  if (algorithm === 'none' || body.byteLength < minBytes) return { bytes: body, compression: 'none' };
  const packed = compress(body, algorithm);
  if (packed.byteLength > body.byteLength * maxRatio) return { bytes: body, compression: 'none' };
  return { bytes: packed, compression: algorithm };
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size += 1;
  }
  return size;
}

function writeVarint(buf: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    buf[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[offset++] = value;
  return offset;
}

function isCount(value: number | undefined): value is number {
  return value !== undefined && Number.isSafeInteger(value) && value >= 0;
}

/** Encode an entry. Pure: same entry and options, same bytes. */
export function encodeEntry(entry: CachedEntry, options: EncodeOptions = {}): Buffer {
  const status = entry.status;
  if (!Number.isInteger(status) || status < 0 || status > 0xffff) throw new RangeError(`encodeEntry: bad status ${status}`);
  const etag = entry.etag === undefined ? undefined : Buffer.from(entry.etag, 'utf8');
  const lastModified = entry.lastModified === undefined ? undefined : Buffer.from(entry.lastModified, 'utf8');
  const arrayLength = isCount(entry.arrayLength) ? entry.arrayLength : undefined;
  const maxAge = typeof entry.maxAgeSeconds === 'number' ? entry.maxAgeSeconds : undefined;
  const headers: Array<[Buffer, Buffer]> = [];
  for (const name of Object.keys(entry.headers)) {
    const value = entry.headers[name];
    if (typeof value !== 'string') continue;
    headers.push([Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')]);
  }
  const body = chooseBodyEncoding(entry.body, options);

  let flags = COMPRESSION_BITS[body.compression];
  let size = FIXED_BYTES;
  if (etag !== undefined) {
    flags |= FLAG_ETAG;
    size += varintSize(etag.length) + etag.length;
  }
  if (lastModified !== undefined) {
    flags |= FLAG_LAST_MODIFIED;
    size += varintSize(lastModified.length) + lastModified.length;
  }
  if (arrayLength !== undefined) {
    flags |= FLAG_ARRAY_LENGTH;
    size += varintSize(arrayLength);
  }
  if (maxAge !== undefined) {
    flags |= FLAG_MAX_AGE;
    size += 8;
  }
  size += varintSize(headers.length);
  for (const [name, value] of headers) size += varintSize(name.length) + name.length + varintSize(value.length) + value.length;
  size += varintSize(entry.body.byteLength) + body.bytes.byteLength;

  const out = Buffer.allocUnsafe(size);
  MAGIC.copy(out, 0);
  out[2] = CODEC_VERSION;
  out[3] = flags;
  out.writeUInt16BE(status, 4);
  out.writeDoubleBE(entry.storedAt, 6);
  out.writeDoubleBE(entry.validatedAt, 14);
  let offset = FIXED_BYTES;
  const writeBytes = (bytes: Uint8Array): void => {
    offset = writeVarint(out, offset, bytes.byteLength);
    out.set(bytes, offset);
    offset += bytes.byteLength;
  };
  if (etag !== undefined) writeBytes(etag);
  if (lastModified !== undefined) writeBytes(lastModified);
  if (arrayLength !== undefined) offset = writeVarint(out, offset, arrayLength);
  if (maxAge !== undefined) offset = out.writeDoubleBE(maxAge, offset);
  offset = writeVarint(out, offset, headers.length);
  for (const [name, value] of headers) {
    writeBytes(name);
    writeBytes(value);
  }
  offset = writeVarint(out, offset, entry.body.byteLength);
  out.set(body.bytes, offset);
  offset += body.bytes.byteLength;
  if (offset !== size) throw new Error(`encodeEntry: wrote ${offset} of ${size} bytes`);
  return out;
}

class Reader {
  offset = FIXED_BYTES;
  constructor(private readonly buf: Buffer) {}

  varint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i += 1) {
      if (this.offset >= this.buf.length) throw new CorruptEntryError(CorruptReason.TRUNCATED, `truncated in ${what}`);
      const byte = this.buf[this.offset++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 128;
    }
    throw new CorruptEntryError(CorruptReason.LENGTH, `bad varint in ${what}`);
  }

  double(what: string): number {
    if (this.offset + 8 > this.buf.length) throw new CorruptEntryError(CorruptReason.TRUNCATED, `truncated in ${what}`);
    const value = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  string(what: string): string {
    const length = this.varint(what);
    if (this.offset + length > this.buf.length) throw new CorruptEntryError(CorruptReason.TRUNCATED, `truncated in ${what}`);
    const value = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  rest(): Buffer {
    return this.buf.subarray(this.offset);
  }
}

/**
 * Decode bytes written by `encodeEntry`. Throws `CorruptEntryError` (and nothing else) for any
 * value it cannot read: wrong magic, unknown version, bad lengths, a body that does not inflate.
 */
export function decodeEntry(buf: Uint8Array): CachedEntry {
  const bytes = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (bytes.length < 3 || bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1]) {
    throw new CorruptEntryError(CorruptReason.FOREIGN, 'not a mirror cache entry');
  }
  if (bytes[2] !== CODEC_VERSION) throw new CorruptEntryError(CorruptReason.VERSION, `unsupported entry version ${bytes[2]}`);
  if (bytes.length < FIXED_BYTES) throw new CorruptEntryError(CorruptReason.TRUNCATED, 'truncated header');
  const flags = bytes[3]!;
  const compressionBits = flags & FLAG_COMPRESSION_MASK;
  if ((flags & FLAG_RESERVED) !== 0 || compressionBits === 3) throw new CorruptEntryError(CorruptReason.FLAGS, `unknown flags ${flags}`);
  const status = bytes.readUInt16BE(4);
  const storedAt = bytes.readDoubleBE(6);
  const validatedAt = bytes.readDoubleBE(14);
  const reader = new Reader(bytes);
  const entry: CachedEntry = { status, headers: {}, body: new Uint8Array(0), storedAt, validatedAt };
  if (flags & FLAG_ETAG) entry.etag = reader.string('etag');
  if (flags & FLAG_LAST_MODIFIED) entry.lastModified = reader.string('lastModified');
  if (flags & FLAG_ARRAY_LENGTH) entry.arrayLength = reader.varint('arrayLength');
  if (flags & FLAG_MAX_AGE) entry.maxAgeSeconds = reader.double('maxAgeSeconds');
  const headerCount = reader.varint('header count');
  if (headerCount > bytes.length) throw new CorruptEntryError(CorruptReason.LENGTH, 'header count out of range');
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < headerCount; i += 1) {
    const name = reader.string('header name');
    headers[name] = reader.string('header value');
  }
  entry.headers = { ...headers };
  const bodyLength = reader.varint('body length');
  if (bodyLength > MAX_BODY_BYTES) throw new CorruptEntryError(CorruptReason.LENGTH, 'body length out of range');
  const stored = reader.rest();
  if (compressionBits === 0) {
    if (stored.length !== bodyLength) {
      throw new CorruptEntryError(stored.length < bodyLength ? CorruptReason.TRUNCATED : CorruptReason.LENGTH, 'body length mismatch');
    }
    entry.body = stored;
    return entry;
  }
  let body: Buffer;
  try {
    // maxOutputLength bounds what a forged length or a compression bomb can allocate
    const limit = { maxOutputLength: Math.max(1, bodyLength) };
    body = compressionBits === 1 ? brotliDecompressSync(stored, limit) : inflateRawSync(stored, limit);
  } catch (err) {
    throw new CorruptEntryError(CorruptReason.DECOMPRESS, 'body does not decompress', { cause: err });
  }
  if (body.length !== bodyLength) throw new CorruptEntryError(CorruptReason.DECOMPRESS, 'decompressed body length mismatch');
  entry.body = body;
  return entry;
}

export type DecodeResult = { ok: true; entry: CachedEntry } | { ok: false; error: CorruptEntryError };

/** `decodeEntry` that returns instead of throwing. Any unexpected error also counts as corrupt. */
export function tryDecodeEntry(buf: Uint8Array): DecodeResult {
  try {
    return { ok: true, entry: decodeEntry(buf) };
  } catch (err) {
    if (err instanceof CorruptEntryError) return { ok: false, error: err };
    return { ok: false, error: new CorruptEntryError(CorruptReason.LENGTH, 'unreadable entry', { cause: err }) };
  }
}
