/**
 * The forms of a served body the edge computes from it — URLs rewritten to a public base URL, that
 * gzipped — kept per source body, so a body served again (every hit of a memory-cache entry shares
 * its body object) is rewritten and compressed once, not on every answer.
 *
 * A body is kept from its second answer on: the first sight only marks it (in a WeakSet, which holds
 * nothing alive), so bodies served once — misses that are not stored, every Redis lookup, which
 * decodes a new object — cost no bookkeeping beyond that mark. Kept bodies form an LRU bounded by
 * bytes (source, rewritten and gzipped forms counted), at most VARIANTS_PER_BODY public bases each.
 */
import type { UrlRewriter } from './url-rewriter.js';

/** Public base URLs whose forms are kept per body (a mirror answers under one or two: / and /api/v3). */
const VARIANTS_PER_BODY = 4;

interface Forms {
  /** Rewritten body per public base (the source itself when there was nothing to rewrite). */
  plain: Map<string, Buffer>;
  /** Gzip of the served form per public base. */
  gzip: Map<string, Buffer>;
  bytes: number;
}

export class BodyVariants {
  private readonly kept = new Map<Uint8Array, Forms>();
  private seen = new WeakSet<Uint8Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** The body as served under `publicBase`: rewritten by `rewriter` (none: served as it is) unless kept. */
  served(source: Uint8Array, publicBase: string, rewriter: UrlRewriter | undefined): Buffer {
    const forms = this.formsOf(source);
    const hit = forms?.plain.get(publicBase);
    if (hit !== undefined) return hit;
    const view = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    const body = rewriter === undefined ? view : rewriter.rewriteBody(view, publicBase);
    if (forms === undefined || forms.plain.size >= VARIANTS_PER_BODY) return body;
    if (body === view) {
      this.add(forms, forms.plain, publicBase, view, 0);
      return view;
    }
    const kept = exact(body);
    this.add(forms, forms.plain, publicBase, kept, kept.byteLength);
    return kept;
  }

  /** The gzip of `body` (the form of `source` served under `publicBase`), made by `compress` unless kept. */
  async gzipped(source: Uint8Array, publicBase: string, body: Buffer, compress: (body: Buffer) => Promise<Buffer>): Promise<Buffer> {
    const forms = this.kept.get(source);
    const hit = forms?.gzip.get(publicBase);
    if (hit !== undefined) return hit;
    const compressed = await compress(body);
    // looked up again: the record may have gone (evicted, cleared) while compressing
    const now = this.kept.get(source);
    if (now === undefined || now.gzip.size >= VARIANTS_PER_BODY || now.gzip.has(publicBase)) return compressed;
    const kept = exact(compressed);
    this.add(now, now.gzip, publicBase, kept, kept.byteLength);
    return kept;
  }

  clear(): void {
    this.kept.clear();
    this.seen = new WeakSet();
    this.bytes = 0;
  }

  /** Bytes held (sources, rewritten and gzipped forms). */
  get size(): number {
    return this.bytes;
  }

  /** The record of a kept body (moved to the recent end), a new one at its second sight, else undefined. */
  private formsOf(source: Uint8Array): Forms | undefined {
    let forms = this.kept.get(source);
    if (forms !== undefined) {
      this.kept.delete(source);
      this.kept.set(source, forms);
      return forms;
    }
    if (!this.seen.has(source)) {
      this.seen.add(source);
      return undefined;
    }
    if (source.byteLength > this.maxBytes / 4) return undefined;
    forms = { plain: new Map(), gzip: new Map(), bytes: source.byteLength };
    this.kept.set(source, forms);
    this.bytes += forms.bytes;
    this.evict();
    return this.kept.get(source);
  }

  private add(forms: Forms, into: Map<string, Buffer>, publicBase: string, value: Buffer, bytes: number): void {
    into.set(publicBase, value);
    forms.bytes += bytes;
    this.bytes += bytes;
    this.evict();
  }

  private evict(): void {
    for (const [source, forms] of this.kept) {
      if (this.bytes <= this.maxBytes) return;
      this.kept.delete(source);
      this.bytes -= forms.bytes;
    }
  }
}

/**
 * `buffer` in memory of its own size: a small Buffer may be a view of a shared 8 KiB pool slab, and
 * zlib's output a view of a larger chunk; a kept form must not hold more memory alive than it counts.
 */
function exact(buffer: Buffer): Buffer {
  if (buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.byteLength) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.byteLength);
  buffer.copy(copy);
  return copy;
}
