import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { DumpedEntry } from '../../domain/ports/cache-dump.port.js';
import {
  SnapshotRejectedError,
  SnapshotRejection,
  type SnapshotInfo,
  type SnapshotMeta,
  type SnapshotReading,
  type SnapshotStorePort,
} from '../../domain/ports/snapshot-store.port.js';
import { BlobNotFoundError, type BlobInfo, type BlobStore } from './blob-store.js';
import { encodeSnapshot, FORMAT_VERSION, SnapshotDecoder, type EncodeOptions, type EncodeResult, type SnapshotHeader } from './snapshot-format.js';

export const DATA_SUFFIX = '.snap';
export const MANIFEST_SUFFIX = '.manifest.json';
const MANIFEST_KIND = 'github-mirror-snapshot-manifest';

/** The commit record of a snapshot: written after its data, so a snapshot without one does not exist. */
export interface SnapshotManifest {
  kind: typeof MANIFEST_KIND;
  manifestVersion: 1;
  id: string;
  takenAt: number;
  committedAt: number;
  backend: string;
  entryFormat: string;
  formatVersion: number;
  entries: number;
  blocks: number;
  /** Size of the data object. */
  bytes: number;
  payloadBytes: number;
  /** SHA-256 of the data object minus its last 32 bytes (the digest it ends with), hex. */
  sha256: string;
  /** Name of the data object. */
  data: string;
}

export interface BlobSnapshotStoreOptions {
  encode?: EncodeOptions;
  /** Leftovers of interrupted writes (temporary files, data without a manifest) older than this are removed (default 1 h). */
  orphanAgeMs?: number;
  /** Written into each snapshot's header ("github-mirror 0.1.0"). */
  writer?: string;
  /** Told about problems that do not fail the operation (a sweep that failed). */
  onWarning?: (message: string, error?: unknown) => void;
}

/** Sortable and unique: "20261127T023204123Z-1a2b3c4d". */
export function newSnapshotId(takenAt: number): string {
  return `${new Date(takenAt).toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
}

const ID_PATTERN = /^(\d{8}T\d{9}Z)-[0-9a-f]{8}$/;

/** The time an id encodes (for a snapshot whose manifest does not read). */
function takenAtOfId(id: string): number {
  const stamp = ID_PATTERN.exec(id)?.[1];
  if (stamp === undefined) return 0;
  const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}.${stamp.slice(15, 18)}Z`;
  const time = Date.parse(iso);
  return Number.isNaN(time) ? 0 : time;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseManifest(bytes: Buffer, id: string): SnapshotManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, 'manifest is not valid JSON');
  }
  const m = json as Partial<SnapshotManifest> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    m.kind !== MANIFEST_KIND ||
    m.id !== id ||
    typeof m.takenAt !== 'number' ||
    typeof m.backend !== 'string' ||
    typeof m.entryFormat !== 'string' ||
    !isCount(m.formatVersion) ||
    !isCount(m.entries) ||
    !isCount(m.bytes) ||
    typeof m.data !== 'string'
  ) {
    throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, 'manifest fields missing, of the wrong type, or naming another snapshot');
  }
  return m as SnapshotManifest;
}

function infoOf(m: SnapshotManifest): SnapshotInfo {
  return { id: m.id, takenAt: m.takenAt, backend: m.backend, entryFormat: m.entryFormat, entries: m.entries, bytes: m.bytes, formatVersion: m.formatVersion };
}

/**
 * SnapshotStorePort over a blob store (directory or S3): each snapshot is a data object
 * `<id>.snap` in the stream format of snapshot-format.ts, committed by a manifest
 * `<id>.manifest.json` written after it. `list` shows committed snapshots only; a writer killed before
 * its manifest leaves an orphan data object (or a temporary file / incomplete upload) that is never
 * listed and is removed by a later save.
 */
export class BlobSnapshotStore implements SnapshotStorePort {
  readonly name: string;
  private readonly orphanAgeMs: number;

  constructor(
    readonly blobs: BlobStore,
    private readonly options: BlobSnapshotStoreOptions = {},
  ) {
    this.name = blobs.kind;
    this.orphanAgeMs = options.orphanAgeMs ?? 60 * 60 * 1000;
  }

  get location(): string {
    return this.blobs.location;
  }

  async list(): Promise<SnapshotInfo[]> {
    const blobs = await this.blobs.list();
    const names = new Set(blobs.map((b) => b.name));
    const ids = blobs.filter((b) => b.name.endsWith(MANIFEST_SUFFIX)).map((b) => b.name.slice(0, -MANIFEST_SUFFIX.length));
    const infos = await Promise.all(
      ids.map(async (id): Promise<SnapshotInfo | undefined> => {
        try {
          const manifest = parseManifest(await this.blobs.readAll(id + MANIFEST_SUFFIX), id);
          const info = infoOf(manifest);
          if (!names.has(manifest.data)) info.problem = `manifest names ${manifest.data}, which does not exist`;
          return info;
        } catch (error) {
          // removed meanwhile (another replica's retention): not listed
          if (error instanceof BlobNotFoundError) return undefined;
          if (error instanceof SnapshotRejectedError) {
            return { id, takenAt: takenAtOfId(id), backend: '', entryFormat: '', entries: 0, bytes: 0, formatVersion: 0, problem: error.message };
          }
          throw error;
        }
      }),
    );
    return infos.filter((i): i is SnapshotInfo => i !== undefined).sort((a, b) => b.takenAt - a.takenAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  async save(meta: SnapshotMeta, batches: AsyncIterable<readonly DumpedEntry[]>): Promise<SnapshotInfo> {
    const id = newSnapshotId(meta.takenAt);
    const result: EncodeResult = { entries: 0, blocks: 0, rawBytes: 0, payloadBytes: 0, bytes: 0, sha256: '' };
    const header = { id, ...meta, writer: this.options.writer ?? 'github-mirror' };
    const data = id + DATA_SUFFIX;
    const bytes = await this.blobs.put(data, encodeSnapshot(header, batches, this.options.encode, result));
    const manifest: SnapshotManifest = {
      kind: MANIFEST_KIND,
      manifestVersion: 1,
      id,
      takenAt: meta.takenAt,
      committedAt: Date.now(),
      backend: meta.backend,
      entryFormat: meta.entryFormat,
      formatVersion: FORMAT_VERSION,
      entries: result.entries,
      blocks: result.blocks,
      bytes,
      payloadBytes: result.payloadBytes,
      sha256: result.sha256,
      data,
    };
    await this.commit(manifest);
    await this.sweep();
    return infoOf(manifest);
  }

  /** Writes the manifest that makes a data object a snapshot. */
  async commit(manifest: SnapshotManifest): Promise<void> {
    await this.blobs.put(manifest.id + MANIFEST_SUFFIX, oneChunk(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8')));
  }

  async open(id: string): Promise<SnapshotReading> {
    let manifest: SnapshotManifest;
    try {
      manifest = parseManifest(await this.blobs.readAll(id + MANIFEST_SUFFIX), id);
    } catch (error) {
      if (error instanceof BlobNotFoundError) throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, `snapshot ${id} has no manifest`);
      throw error;
    }
    let source: AsyncIterable<Uint8Array>;
    try {
      source = await this.blobs.read(manifest.data);
    } catch (error) {
      if (error instanceof BlobNotFoundError) throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, `snapshot ${id}: data object ${manifest.data} is missing`);
      throw error;
    }
    const decoder = new SnapshotDecoder(source);
    let header: SnapshotHeader;
    try {
      header = await decoder.header();
      if (header.id !== id) throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, `snapshot ${id}: its data belongs to snapshot ${header.id}`);
    } catch (error) {
      await decoder.close().catch(() => undefined);
      throw error;
    }
    const info: SnapshotInfo = {
      id,
      takenAt: header.takenAt,
      backend: header.backend,
      entryFormat: header.entryFormat,
      entries: manifest.entries,
      bytes: manifest.bytes,
      formatVersion: header.formatVersion,
    };
    return { info, batches: checkedBatches(decoder, manifest), close: () => decoder.close() };
  }

  async remove(id: string): Promise<void> {
    // the manifest first: from then on the snapshot does not exist, whatever happens to the data
    await this.blobs.delete(id + MANIFEST_SUFFIX);
    await this.blobs.delete(id + DATA_SUFFIX);
  }

  /** Removes leftovers of interrupted writes: temporary files or uploads, data objects without a manifest. */
  async sweep(): Promise<number> {
    let removed = 0;
    try {
      removed += await this.blobs.sweep(this.orphanAgeMs);
      const blobs = await this.blobs.list();
      const names = new Set(blobs.map((b) => b.name));
      const now = Date.now();
      for (const blob of blobs) {
        if (!blob.name.endsWith(DATA_SUFFIX) || now - blob.modifiedAt < this.orphanAgeMs) continue;
        const id = blob.name.slice(0, -DATA_SUFFIX.length);
        if (names.has(id + MANIFEST_SUFFIX)) continue;
        await this.blobs.delete(blob.name);
        removed += 1;
      }
    } catch (error) {
      this.options.onWarning?.('snapshot store: removing leftovers of interrupted snapshots failed', error);
    }
    return removed;
  }

  /** Raw bytes of a committed snapshot's data object (CLI export). */
  async readData(id: string): Promise<AsyncIterable<Uint8Array>> {
    const manifest = parseManifest(await this.blobs.readAll(id + MANIFEST_SUFFIX), id);
    return this.blobs.read(manifest.data);
  }

  /**
   * Stores a snapshot file made elsewhere (CLI import): `open` yields it twice, the first pass
   * verifies the whole stream, the second uploads it; then its manifest commits it.
   */
  async importData(open: () => Promise<AsyncIterable<Uint8Array>>): Promise<SnapshotInfo> {
    const decoder = new SnapshotDecoder(await open());
    const header = await decoder.header();
    for await (const _batch of decoder.batches()) {
      // reading is verifying
    }
    const trailer = decoder.trailer;
    if (trailer === undefined) throw new SnapshotRejectedError(SnapshotRejection.TRUNCATED, 'snapshot did not read to its end');
    if (!ID_PATTERN.test(header.id)) throw new SnapshotRejectedError(SnapshotRejection.CORRUPT, `snapshot id ${JSON.stringify(header.id)} is not valid`);
    const existing = (await this.blobs.list()).some((b: BlobInfo) => b.name === header.id + MANIFEST_SUFFIX);
    if (existing) throw new Error(`snapshot ${header.id} is already in the store`);
    const data = header.id + DATA_SUFFIX;
    const bytes = await this.blobs.put(data, await open());
    const manifest: SnapshotManifest = {
      kind: MANIFEST_KIND,
      manifestVersion: 1,
      id: header.id,
      takenAt: header.takenAt,
      committedAt: Date.now(),
      backend: header.backend,
      entryFormat: header.entryFormat,
      formatVersion: header.formatVersion,
      entries: trailer.entries,
      blocks: trailer.blocks,
      bytes,
      payloadBytes: trailer.payloadBytes,
      sha256: decoder.sha256,
      data,
    };
    await this.commit(manifest);
    return infoOf(manifest);
  }

  close(): void {
    this.blobs.close?.();
  }
}

function oneChunk(bytes: Buffer): AsyncIterable<Buffer> {
  return Readable.from([bytes]);
}

/** The decoder's batches, then a check that the stream holds as many entries as its manifest says. */
async function* checkedBatches(decoder: SnapshotDecoder, manifest: SnapshotManifest): AsyncGenerator<DumpedEntry[]> {
  for await (const batch of decoder.batches()) yield batch;
  if (decoder.trailer !== undefined && decoder.trailer.entries !== manifest.entries) {
    throw new SnapshotRejectedError(SnapshotRejection.MANIFEST, `manifest says ${manifest.entries} entries, the data holds ${decoder.trailer.entries}`);
  }
}
