/**
 * What values read from Redis opened to, by name, with the exact bytes and the seal key they were
 * opened with: a read that gets the same bytes again and opens them with the same key reuses the
 * result (no decryption, no decoding). Another key, or other bytes, find nothing. Bounded by the bytes
 * kept (the values' bytes plus the sizes the caller gives); the oldest go first.
 */
export class OpenedValues<T> {
  private readonly opened = new Map<string, { raw: Buffer; sealKey: Uint8Array | undefined; value: T; size: number }>();
  private bytes = 0;

  /** `maxBytes` in all; a single value larger than a sixteenth of it is not kept. */
  constructor(private readonly maxBytes: number) {}

  /** What `raw`, opened with `sealKey`, opened to when it was last read under `name`. */
  get(name: string, raw: Uint8Array, sealKey: Uint8Array | undefined): T | undefined {
    const held = this.opened.get(name);
    if (held === undefined || !sameKey(held.sealKey, sealKey) || !held.raw.equals(raw)) return undefined;
    return held.value;
  }

  /** Keeps what `raw` opened to; `extraBytes`: what the opened value holds beyond `raw` (a body). */
  set(name: string, raw: Buffer, sealKey: Uint8Array | undefined, value: T, extraBytes = 0): void {
    this.delete(name);
    const size = raw.byteLength + extraBytes;
    if (size > this.maxBytes / 16) return;
    this.opened.set(name, { raw, sealKey, value, size });
    this.bytes += size;
    for (const [oldest, held] of this.opened) {
      if (this.bytes <= this.maxBytes) break;
      this.opened.delete(oldest);
      this.bytes -= held.size;
    }
  }

  delete(name: string): void {
    const held = this.opened.get(name);
    if (held === undefined) return;
    this.opened.delete(name);
    this.bytes -= held.size;
  }

  clear(): void {
    this.opened.clear();
    this.bytes = 0;
  }
}

function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
