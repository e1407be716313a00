/**
 * Rewrites URLs that point at the upstream base so that clients keep going through the mirror
 * (pagination links, `url` fields in bodies). Works on bytes: no JSON parse on the hot path.
 */
export class UrlRewriter {
  private readonly upstreamBytes: Buffer;

  constructor(readonly upstreamBase: string) {
    this.upstreamBytes = Buffer.from(upstreamBase);
  }

  rewriteHeader(value: string, publicBase: string): string {
    return value.includes(this.upstreamBase) ? value.split(this.upstreamBase).join(publicBase) : value;
  }

  /** Returns the same buffer when there is nothing to rewrite. */
  rewriteBody(body: Buffer, publicBase: string): Buffer {
    let at = body.indexOf(this.upstreamBytes);
    if (at === -1) return body;
    const replacement = Buffer.from(publicBase);
    const parts: Buffer[] = [];
    let from = 0;
    while (at !== -1) {
      parts.push(body.subarray(from, at), replacement);
      from = at + this.upstreamBytes.length;
      at = body.indexOf(this.upstreamBytes, from);
    }
    parts.push(body.subarray(from));
    return Buffer.concat(parts);
  }
}
