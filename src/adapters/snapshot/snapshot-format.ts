/**
 * The snapshot stream format, version 1. Streamed both ways: the encoder holds one block (about
 * `blockBytes` of entries) at a time and the decoder verifies each block before it yields a single
 * entry of it. Every integer is big-endian. Described for operators in docs/snapshots.md.
 *
 *   preamble   8 bytes  magic "GHMSNAP\0"
 *              u16      format version (1)
 *              u32      header length, then the header (UTF-8 JSON, SnapshotHeader)
 *              u32      CRC-32 of the header bytes
 *   blocks     u8       tag 0x42 'B'
 *              u8       method: 0 stored as is, 1 raw DEFLATE
 *              u32      raw length (records, before compression)
 *              u32      stored length
 *              u32      record count
 *              u32      CRC-32 of the four fields above and of the stored bytes
 *              ...      stored bytes: the records, compressed as the method says
 *   end        u8       tag 0x45 'E'
 *              u32      trailer length, then the trailer (UTF-8 JSON, SnapshotTrailer)
 *              u32      CRC-32 of the trailer bytes
 *              32 bytes SHA-256 of every byte before these 32
 *
 *   record     u16      key length, then the key (UTF-8)
 *              f64      ttl: ms the entry has left, counted from header.takenAt
 *              u32      payload length, then the payload: the entry's bytes, opaque here (the
 *                       cache's own encoding, possibly sealed with a per-credential key)
 *
 * Blocks that DEFLATE does not shrink by 10 % (payloads Redis already holds compressed) are stored as
 * they are, and the next 15 blocks are stored without trying: compressing incompressible bytes
 * costs far more time than it saves space.
 *
 * A stream that ends before its end block is truncated; a CRC, a length or the SHA-256 that does not
 * match is corrupt; another magic is foreign; another version is refused. Each is a
 * SnapshotRejectedError with that reason.
 */
import { createHash, type Hash } from 'node:crypto';
import { promisify } from 'node:util';
import { crc32, deflateRaw as deflateRawCb, inflateRaw as inflateRawCb } from 'node:zlib';
import type { DumpedEntry } from '../../domain/ports/cache-dump.port.js';
import { SnapshotRejectedError, SnapshotRejection } from '../../domain/ports/snapshot-store.port.js';

const deflateRaw = promisify(deflateRawCb);
const inflateRaw = promisify(inflateRawCb) as (buffer: Uint8Array, options: { maxOutputLength: number }) => Promise<Buffer>;

export const FORMAT_VERSION = 1;
export const MAGIC = Buffer.from('GHMSNAP\0', 'latin1');
const TAG_BLOCK = 0x42;
const TAG_END = 0x45;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 1;
const BLOCK_HEAD_BYTES = 2 + 4 * 4;
/** A block is kept compressed only when DEFLATE brings it under this fraction of its raw size. */
const WORTH_COMPRESSING = 0.9;
/** Blocks stored without trying after one that did not compress. */
const SKIP_AFTER_INCOMPRESSIBLE = 15;
const RECORD_FIXED_BYTES = 2 + 8 + 4;
const DIGEST_BYTES = 32;

/** Bounds a reader enforces so a forged length never allocates more than this. */
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_BLOCK_RAW_BYTES = 256 * 1024 * 1024;
export const MAX_KEY_BYTES = 0xffff;

export interface SnapshotHeader {
  formatVersion: number;
  id: string;
  /** Epoch ms; every record's ttl counts from it. */
  takenAt: number;
  /** Cache backend it was taken from. */
  backend: string;
  /** How the payloads are encoded (CacheDumpPort.entryFormat). */
  entryFormat: string;
  /** Per block: DEFLATE where it pays, else stored. */
  compression: 'deflate-raw-adaptive';
  /** The program that wrote it. */
  writer: string;
}

export interface SnapshotTrailer {
  entries: number;
  blocks: number;
  /** Sum of the records' raw (uncompressed) lengths. */
  rawBytes: number;
  /** Sum of the payload lengths. */
  payloadBytes: number;
}

export interface EncodeOptions {
  /** Target raw size of one block (default 1 MiB). A record larger than it gets a block of its own. */
  blockBytes?: number;
  /** DEFLATE level 1–9, or 0 to store every block as is (default 1: fast; see docs/snapshots.md). */
  level?: number;
  /** Blocks being compressed at once, off the event loop (default 2). */
  parallelism?: number;
}

/** Filled in by the encoder as it goes; final once the stream has been read to its end. */
export interface EncodeResult {
  entries: number;
  blocks: number;
  rawBytes: number;
  payloadBytes: number;
  /** Bytes of the whole stream. */
  bytes: number;
  /** SHA-256 of the stream minus its last 32 bytes (the digest itself), hex; set at the end. */
  sha256: string;
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value, 0);
  return b;
}

function framed(json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json), 'utf8');
  return Buffer.concat([u32(body.length), body, u32(crc32(body))]);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

interface PendingRecord {
  key: Buffer;
  ttlMs: number;
  payload: Buffer;
}

/** Whether to try compressing the next block; told whether the last attempt paid. */
class CompressionPolicy {
  private skip = 0;
  constructor(private readonly level: number) {}
  shouldTry(): boolean {
    if (this.level === 0) return false;
    if (this.skip > 0) {
      this.skip -= 1;
      return false;
    }
    return true;
  }
  paid(paid: boolean): void {
    if (!paid) this.skip = SKIP_AFTER_INCOMPRESSIBLE;
  }
}

async function buildBlock(records: PendingRecord[], rawBytes: number, level: number, policy: CompressionPolicy): Promise<Buffer[]> {
  const raw = Buffer.allocUnsafe(rawBytes);
  let offset = 0;
  for (const record of records) {
    offset = raw.writeUInt16BE(record.key.length, offset);
    offset += record.key.copy(raw, offset);
    offset = raw.writeDoubleBE(record.ttlMs, offset);
    offset = raw.writeUInt32BE(record.payload.length, offset);
    offset += record.payload.copy(raw, offset);
  }
  let stored = raw;
  let method = METHOD_STORED;
  if (policy.shouldTry()) {
    const packed = await deflateRaw(raw, { level });
    const paid = packed.length <= raw.length * WORTH_COMPRESSING;
    policy.paid(paid);
    if (paid) {
      stored = packed;
      method = METHOD_DEFLATE;
    }
  }
  const head = Buffer.allocUnsafe(BLOCK_HEAD_BYTES);
  head[0] = TAG_BLOCK;
  head[1] = method;
  head.writeUInt32BE(rawBytes, 2);
  head.writeUInt32BE(stored.length, 6);
  head.writeUInt32BE(records.length, 10);
  head.writeUInt32BE(crc32(stored, crc32(head.subarray(1, 14))), 14);
  return [head, stored];
}

/**
 * Encodes entries (ttlMs relative to header.takenAt) as a snapshot stream. Pull-driven: it reads the
 * next batch only when the consumer wants more bytes, so memory stays at a few blocks.
 */
export async function* encodeSnapshot(
  header: Omit<SnapshotHeader, 'formatVersion' | 'compression'>,
  batches: AsyncIterable<readonly DumpedEntry[]>,
  options: EncodeOptions = {},
  result: EncodeResult = { entries: 0, blocks: 0, rawBytes: 0, payloadBytes: 0, bytes: 0, sha256: '' },
): AsyncGenerator<Buffer, EncodeResult> {
  const blockBytes = options.blockBytes ?? 1024 * 1024;
  const level = options.level ?? 1;
  const parallelism = Math.max(1, options.parallelism ?? 2);
  const hash = createHash('sha256');
  const out = (buf: Buffer): Buffer => {
    hash.update(buf);
    result.bytes += buf.length;
    return buf;
  };
  const version = Buffer.allocUnsafe(2);
  version.writeUInt16BE(FORMAT_VERSION, 0);
  const fullHeader: SnapshotHeader = { formatVersion: FORMAT_VERSION, ...header, compression: 'deflate-raw-adaptive' };
  const policy = new CompressionPolicy(level);
  yield out(Buffer.concat([MAGIC, version, framed(fullHeader)]));

  const pending: Array<Promise<Buffer[]>> = [];
  let records: PendingRecord[] = [];
  let rawBytes = 0;
  const seal = (): void => {
    const block = buildBlock(records, rawBytes, level, policy);
    // a failure is rethrown where the block is awaited; this only keeps it from being "unhandled" meanwhile
    block.catch(() => undefined);
    pending.push(block);
    result.blocks += 1;
    result.rawBytes += rawBytes;
    records = [];
    rawBytes = 0;
  };
  try {
    for await (const batch of batches) {
      for (const entry of batch) {
        const key = Buffer.from(entry.key, 'utf8');
        if (key.length > MAX_KEY_BYTES) throw new RangeError(`snapshot: key longer than ${MAX_KEY_BYTES} bytes`);
        if (!Number.isFinite(entry.ttlMs)) throw new RangeError('snapshot: ttl must be a finite number');
        const payload = asBuffer(entry.payload);
        const size = RECORD_FIXED_BYTES + key.length + payload.length;
        if (size > MAX_BLOCK_RAW_BYTES) throw new RangeError(`snapshot: entry of ${size} bytes is larger than a block may be`);
        if (rawBytes > 0 && rawBytes + size > MAX_BLOCK_RAW_BYTES) seal();
        records.push({ key, ttlMs: entry.ttlMs, payload });
        rawBytes += size;
        result.entries += 1;
        result.payloadBytes += payload.length;
        if (rawBytes >= blockBytes) seal();
        while (pending.length > parallelism) for (const part of await pending.shift()!) yield out(part);
      }
    }
    if (records.length > 0) seal();
    while (pending.length > 0) for (const part of await pending.shift()!) yield out(part);
  } finally {
    // on an early stop, let the compressions in flight end (their results are dropped)
    await Promise.allSettled(pending);
  }
  const trailer: SnapshotTrailer = { entries: result.entries, blocks: result.blocks, rawBytes: result.rawBytes, payloadBytes: result.payloadBytes };
  yield out(Buffer.concat([Buffer.of(TAG_END), framed(trailer)]));
  const digest = hash.digest();
  result.sha256 = digest.toString('hex');
  result.bytes += digest.length;
  yield digest;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

function rejected(reason: SnapshotRejection, message: string, cause?: unknown): SnapshotRejectedError {
  return new SnapshotRejectedError(reason, message, cause === undefined ? undefined : { cause });
}

/** Exactly-n-bytes reads over a chunked stream, hashing every byte it hands out. */
class ByteReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(
    private readonly source: AsyncIterator<Uint8Array>,
    private readonly hash: Hash,
  ) {}

  /** n bytes, or throws "truncated" when the stream ends first. */
  async read(n: number, what: string): Promise<Buffer> {
    while (this.buffered < n) {
      if (this.ended || !(await this.pull())) {
        throw rejected(SnapshotRejection.TRUNCATED, `truncated: the stream ends in ${what} at byte ${this.position + this.buffered}`);
      }
    }
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let offset = 0;
      while (offset < n) {
        const chunk = this.chunks[0]!;
        const take = Math.min(chunk.length, n - offset);
        chunk.copy(out, offset, 0, take);
        offset += take;
        if (take === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(take);
      }
    }
    this.buffered -= n;
    this.position += n;
    this.hash.update(out);
    return out;
  }

  /** True when nothing is left (reads ahead to find out). */
  async atEnd(): Promise<boolean> {
    while (this.buffered === 0) {
      if (this.ended || !(await this.pull())) return true;
    }
    return false;
  }

  private async pull(): Promise<boolean> {
    const next = await this.source.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    const chunk = asBuffer(next.value);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw rejected(SnapshotRejection.CORRUPT, `${what} is not valid JSON`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw rejected(SnapshotRejection.CORRUPT, `${what} is not an object`);
  return value as Record<string, unknown>;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function toHeader(json: Record<string, unknown>): SnapshotHeader {
  const { formatVersion, id, takenAt, backend, entryFormat, compression, writer } = json;
  if (
    formatVersion !== FORMAT_VERSION ||
    typeof id !== 'string' ||
    typeof takenAt !== 'number' ||
    !Number.isFinite(takenAt) ||
    typeof backend !== 'string' ||
    typeof entryFormat !== 'string' ||
    compression !== 'deflate-raw-adaptive'
  ) {
    throw rejected(SnapshotRejection.CORRUPT, 'header fields missing or of the wrong type');
  }
  return { formatVersion, id, takenAt, backend, entryFormat, compression, writer: typeof writer === 'string' ? writer : '' };
}

function toTrailer(json: Record<string, unknown>): SnapshotTrailer {
  const { entries, blocks, rawBytes, payloadBytes } = json;
  if (!isCount(entries) || !isCount(blocks) || !isCount(rawBytes) || !isCount(payloadBytes)) {
    throw rejected(SnapshotRejection.CORRUPT, 'trailer fields missing or of the wrong type');
  }
  return { entries, blocks, rawBytes, payloadBytes };
}

export interface DecodeStats {
  entries: number;
  blocks: number;
  rawBytes: number;
  payloadBytes: number;
  /** Stream bytes read. */
  bytes: number;
}

/**
 * Reads a snapshot stream: `header()` first (magic, version and header checked), then `batches()`,
 * one verified block at a time. Throws SnapshotRejectedError for anything that does not check out,
 * at the first bad byte: the batches yielded before it were whole and verified.
 */
export class SnapshotDecoder {
  readonly stats: DecodeStats = { entries: 0, blocks: 0, rawBytes: 0, payloadBytes: 0, bytes: 0 };
  /** Set once the stream has been read and verified to its end. */
  trailer: SnapshotTrailer | undefined;
  /** SHA-256 (hex) of the stream minus its digest; set with `trailer`. */
  sha256 = '';
  private readonly iterator: AsyncIterator<Uint8Array>;
  private readonly reader: ByteReader;
  private readonly hash = createHash('sha256');
  private headerPromise: Promise<SnapshotHeader> | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
    this.reader = new ByteReader(this.iterator, this.hash);
  }

  header(): Promise<SnapshotHeader> {
    this.headerPromise ??= this.readHeader();
    return this.headerPromise;
  }

  /** Stops reading the source (when the consumer leaves early). */
  async close(): Promise<void> {
    await this.iterator.return?.();
  }

  async *batches(): AsyncGenerator<DumpedEntry[]> {
    await this.header();
    // the next block is read and inflated while the current one is being consumed
    let next: Promise<DumpedEntry[] | undefined> = this.readBlock();
    next.catch(() => undefined);
    for (;;) {
      const batch = await next;
      if (batch === undefined) return;
      next = this.readBlock();
      next.catch(() => undefined);
      yield batch;
    }
  }

  private async readHeader(): Promise<SnapshotHeader> {
    let magic: Buffer;
    try {
      magic = await this.reader.read(MAGIC.length + 2, 'the preamble');
    } catch (error) {
      if (error instanceof SnapshotRejectedError && this.reader.position === 0) {
        throw rejected(SnapshotRejection.TRUNCATED, 'truncated: the stream is empty or shorter than the preamble');
      }
      throw error;
    }
    if (!magic.subarray(0, MAGIC.length).equals(MAGIC)) throw rejected(SnapshotRejection.FOREIGN, 'not a github-mirror snapshot (wrong magic bytes)');
    const version = magic.readUInt16BE(MAGIC.length);
    if (version !== FORMAT_VERSION) {
      throw rejected(SnapshotRejection.VERSION, `snapshot format version ${version} is not supported (this mirror reads version ${FORMAT_VERSION})`);
    }
    const json = await this.readFramedJson('the header');
    return toHeader(json);
  }

  private async readFramedJson(what: string): Promise<Record<string, unknown>> {
    const length = (await this.reader.read(4, what)).readUInt32BE(0);
    if (length > MAX_HEADER_BYTES) throw rejected(SnapshotRejection.CORRUPT, `${what} length ${length} is out of range`);
    const body = Buffer.from(await this.reader.read(length, what));
    const crc = (await this.reader.read(4, what)).readUInt32BE(0);
    if (crc32(body) !== crc) throw rejected(SnapshotRejection.CORRUPT, `${what} checksum mismatch`);
    return parseJson(body, what);
  }

  /** The next block's records, or undefined after the end block was read and verified. */
  private async readBlock(): Promise<DumpedEntry[] | undefined> {
    const where = `block ${this.stats.blocks + 1}`;
    const tag = (await this.reader.read(1, `${where} (tag)`))[0];
    if (tag === TAG_END) {
      await this.readEnd();
      return undefined;
    }
    if (tag !== TAG_BLOCK) throw rejected(SnapshotRejection.CORRUPT, `${where}: unknown tag 0x${(tag ?? 0).toString(16)} at byte ${this.reader.position - 1}`);
    const head = Buffer.from(await this.reader.read(BLOCK_HEAD_BYTES - 1, where));
    const method = head[0];
    const rawLength = head.readUInt32BE(1);
    const storedLength = head.readUInt32BE(5);
    const count = head.readUInt32BE(9);
    const crc = head.readUInt32BE(13);
    if (rawLength > MAX_BLOCK_RAW_BYTES || storedLength > MAX_BLOCK_RAW_BYTES + 1024 * 1024 || count > rawLength / RECORD_FIXED_BYTES) {
      throw rejected(SnapshotRejection.CORRUPT, `${where}: lengths out of range`);
    }
    const stored = await this.reader.read(storedLength, where);
    if (crc32(stored, crc32(head.subarray(0, 13))) !== crc) throw rejected(SnapshotRejection.CORRUPT, `${where}: checksum mismatch`);
    let raw: Buffer;
    if (method === METHOD_STORED) {
      raw = stored;
    } else if (method === METHOD_DEFLATE) {
      try {
        raw = await inflateRaw(stored, { maxOutputLength: Math.max(1, rawLength) });
      } catch (error) {
        throw rejected(SnapshotRejection.CORRUPT, `${where}: does not inflate`, error);
      }
    } else {
      throw rejected(SnapshotRejection.CORRUPT, `${where}: unknown compression method ${method}`);
    }
    if (raw.length !== rawLength) throw rejected(SnapshotRejection.CORRUPT, `${where}: inflates to ${raw.length} bytes, expected ${rawLength}`);
    const records = parseRecords(raw, count, where);
    this.stats.blocks += 1;
    this.stats.entries += records.length;
    this.stats.rawBytes += rawLength;
    for (const record of records) this.stats.payloadBytes += record.payload.byteLength;
    this.stats.bytes = this.reader.position;
    return records;
  }

  private async readEnd(): Promise<void> {
    const trailer = toTrailer(await this.readFramedJson('the trailer'));
    const expected = this.hash.copy().digest();
    const digest = await this.reader.read(DIGEST_BYTES, 'the digest');
    if (!digest.equals(expected)) throw rejected(SnapshotRejection.CORRUPT, 'SHA-256 of the stream does not match');
    if (trailer.entries !== this.stats.entries || trailer.blocks !== this.stats.blocks || trailer.rawBytes !== this.stats.rawBytes) {
      throw rejected(SnapshotRejection.CORRUPT, `trailer says ${trailer.entries} entries in ${trailer.blocks} blocks, read ${this.stats.entries} in ${this.stats.blocks}`);
    }
    if (!(await this.reader.atEnd())) throw rejected(SnapshotRejection.CORRUPT, 'bytes after the end of the snapshot');
    this.stats.bytes = this.reader.position;
    this.sha256 = expected.toString('hex');
    this.trailer = trailer;
  }
}

function parseRecords(raw: Buffer, count: number, where: string): DumpedEntry[] {
  const records: DumpedEntry[] = new Array<DumpedEntry>(count);
  let offset = 0;
  for (let i = 0; i < count; i += 1) {
    if (offset + RECORD_FIXED_BYTES > raw.length) throw rejected(SnapshotRejection.CORRUPT, `${where}: record ${i + 1} overruns the block`);
    const keyLength = raw.readUInt16BE(offset);
    offset += 2;
    if (offset + keyLength + 12 > raw.length) throw rejected(SnapshotRejection.CORRUPT, `${where}: record ${i + 1} overruns the block`);
    const key = raw.toString('utf8', offset, offset + keyLength);
    offset += keyLength;
    const ttlMs = raw.readDoubleBE(offset);
    offset += 8;
    const payloadLength = raw.readUInt32BE(offset);
    offset += 4;
    if (offset + payloadLength > raw.length || !Number.isFinite(ttlMs)) throw rejected(SnapshotRejection.CORRUPT, `${where}: record ${i + 1} is malformed`);
    records[i] = { key, ttlMs, payload: raw.subarray(offset, offset + payloadLength) };
    offset += payloadLength;
  }
  if (offset !== raw.length) throw rejected(SnapshotRejection.CORRUPT, `${where}: ${raw.length - offset} bytes after the last record`);
  return records;
}
