import { createReadStream } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { DumpedEntry } from '../../domain/ports/cache-dump.port.js';
import type { SnapshotInfo, SnapshotReading, SnapshotStorePort } from '../../domain/ports/snapshot-store.port.js';
import { SnapshotDecoder } from './snapshot-format.js';

/**
 * One snapshot file outside any store (an export, a copy from another environment) as a read-only
 * SnapshotStorePort, so the restore use case can load it (operator CLI: `import FILE`).
 */
export class SnapshotFileSource implements SnapshotStorePort {
  readonly name = 'file';
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
  }

  async list(): Promise<SnapshotInfo[]> {
    const decoder = new SnapshotDecoder(this.stream());
    try {
      const header = await decoder.header();
      return [{ id: header.id, takenAt: header.takenAt, backend: header.backend, entryFormat: header.entryFormat, entries: 0, bytes: 0, formatVersion: header.formatVersion }];
    } finally {
      await decoder.close();
    }
  }

  async open(id: string): Promise<SnapshotReading> {
    const decoder = new SnapshotDecoder(this.stream());
    try {
      const header = await decoder.header();
      if (header.id !== id) throw new Error(`${basename(this.path)} holds snapshot ${header.id}, not ${id}`);
      const info: SnapshotInfo = { id, takenAt: header.takenAt, backend: header.backend, entryFormat: header.entryFormat, entries: 0, bytes: 0, formatVersion: header.formatVersion };
      const batches: AsyncIterable<DumpedEntry[]> = decoder.batches();
      return { info, batches, close: () => decoder.close() };
    } catch (error) {
      await decoder.close();
      throw error;
    }
  }

  save(): Promise<SnapshotInfo> {
    return Promise.reject(new Error('a snapshot file is read-only'));
  }

  remove(): Promise<void> {
    return Promise.reject(new Error('a snapshot file is read-only'));
  }

  private stream(): AsyncIterable<Uint8Array> {
    return createReadStream(this.path, { highWaterMark: 1024 * 1024 });
  }
}
