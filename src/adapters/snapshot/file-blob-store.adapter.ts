import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BlobNotFoundError, checkBlobName, onBlob, type BlobInfo, type BlobStore } from './blob-store.js';

const TEMP_SUFFIX = '.tmp';
/** Chunks are gathered up to this size before a write (the encoder yields small block heads). */
const WRITE_BYTES = 1024 * 1024;

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Snapshot files in a directory. A blob is written to a hidden temporary file in the same directory,
 * flushed to disk (fsync), then renamed over its name: rename is atomic, so a reader sees the whole
 * file or none, and a process killed mid-write leaves only a temporary file that `list` ignores and
 * `sweep` removes.
 */
export class FileBlobStore implements BlobStore {
  readonly kind = 'file';
  readonly location: string;

  constructor(dir: string) {
    this.location = resolve(dir);
  }

  async list(): Promise<BlobInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.location);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
    const out: BlobInfo[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      try {
        const info = await stat(join(this.location, name));
        if (info.isFile()) out.push({ name, size: info.size, modifiedAt: info.mtimeMs });
      } catch (error) {
        // removed between readdir and stat (another replica's retention): not listed
        if (!isNotFound(error)) throw error;
      }
    }
    return out;
  }

  async put(name: string, body: AsyncIterable<Uint8Array>): Promise<number> {
    checkBlobName(name);
    await mkdir(this.location, { recursive: true });
    const temp = join(this.location, `.${name}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    const handle = await open(temp, 'wx', 0o640);
    let written = 0;
    try {
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        if (pendingBytes === 0) return;
        const chunks = pending;
        pending = [];
        pendingBytes = 0;
        await writeAll(handle, chunks);
      };
      for await (const chunk of body) {
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        written += chunk.byteLength;
        if (pendingBytes >= WRITE_BYTES) await flush();
      }
      await flush();
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, join(this.location, name));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await this.syncDirectory();
    return written;
  }

  async read(name: string): Promise<AsyncIterable<Uint8Array>> {
    checkBlobName(name);
    const path = join(this.location, name);
    // open first, so a missing file is a rejection here rather than an error event later
    const handle = await open(path, 'r').catch((error: unknown) => {
      throw isNotFound(error) ? new BlobNotFoundError(name) : error;
    });
    return handle.createReadStream({ highWaterMark: 1024 * 1024, autoClose: true }) as AsyncIterable<Uint8Array>;
  }

  readAll(name: string): Promise<Buffer> {
    return onBlob(name, isNotFound, () => readFile(join(this.location, name)));
  }

  delete(name: string): Promise<void> {
    return onBlob(name, isNotFound, () => unlink(join(this.location, name)), () => undefined);
  }


  async sweep(olderThanMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.location);
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
    let removed = 0;
    const now = Date.now();
    for (const name of names) {
      if (!name.startsWith('.') || !name.endsWith(TEMP_SUFFIX)) continue;
      const path = join(this.location, name);
      try {
        if (now - (await stat(path)).mtimeMs < olderThanMs) continue;
        await unlink(path);
        removed += 1;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return removed;
  }

  /** Makes the rename itself durable (the directory entry), where the platform allows it. */
  private async syncDirectory(): Promise<void> {
    let dir: FileHandle | undefined;
    try {
      dir = await open(this.location, 'r');
      await dir.sync();
    } catch (error) {
      // some platforms and file systems refuse fsync on a directory: the rename still happened
      if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    } finally {
      await dir?.close();
    }
  }
}

async function writeAll(handle: FileHandle, chunks: Uint8Array[]): Promise<void> {
  let remaining = chunks;
  while (remaining.length > 0) {
    const { bytesWritten } = await handle.writev(remaining);
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const chunk of remaining) {
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
      skip = 0;
    }
    remaining = rest;
  }
}
