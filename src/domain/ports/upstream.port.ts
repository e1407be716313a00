import type { HeaderMap } from '../model.js';

export interface UpstreamRequest {
  method: string;
  /** Path plus raw query string ("/repos/a/b?x=1"), forwarded byte for byte. */
  target: string;
  headers: HeaderMap;
  /** Request body for methods that carry one; streamed. */
  body?: AsyncIterable<Uint8Array> | Uint8Array;
}

export interface BufferedResponse {
  status: number;
  headers: HeaderMap;
  /** Decoded (identity) body. */
  body: Uint8Array;
  /**
   * Not sent: the upstream governor holds the credential (GitHub asked it to wait), and this is the
   * mirror's own 429 with the Retry-After still to wait. Served like GitHub's 429, but not an upstream call.
   */
  held?: true;
}

export interface StreamedResponse {
  status: number;
  headers: HeaderMap;
  body: AsyncIterable<Uint8Array>;
  /** As BufferedResponse.held. */
  held?: true;
}

/**
 * GitHub as the use cases need it. Failures reject with a MirrorError whose code is
 * UPSTREAM_TIMEOUT, UPSTREAM_UNREACHABLE or UPSTREAM_OFFLINE; any HTTP status is a resolved answer.
 */
export interface UpstreamPort {
  /** For cached GETs: the whole answer, decoded (the adapter asks for gzip and inflates). */
  fetch(request: UpstreamRequest): Promise<BufferedResponse>;
  /** For everything else: streamed both ways, content encoding untouched. */
  forward(request: UpstreamRequest): Promise<StreamedResponse>;
}
