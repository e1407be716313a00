/**
 * Bytes the memory cache keeps for a long time, in memory of their own size. A body read from a
 * socket is a view of the chunk it arrived in (its headers, or a neighbouring answer, included), a
 * decompressed one a view of zlib's output chunk, a small Buffer a slice of an 8 KiB pool slab:
 * kept as they are, each would hold more memory alive than the cache counts for it.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
