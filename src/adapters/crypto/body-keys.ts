/**
 * Keys for bodies shared across credentials (docs/architecture.md, "Storage layout"), derived from
 * cache.secret alone: the mirror must open a shared body without the credential that stored it, to
 * compute the ETag another credential would get for it.
 *
 * - A body's id is an HMAC of its bytes (not a bare SHA-256): a dump's key names then do not let
 *   anyone confirm a guessed body (an empty list, a public file) without the secret.
 * - A body is sealed (AES-256-GCM, entry-sealer.ts) under a key derived from the secret and its id.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** Hex characters of a body id (160 bits). */
export const BODY_ID_LENGTH = 40;
const MEMO_MAX = 4096;

export class BodyKeys {
  private readonly idKey: Buffer;
  private readonly sealBase: Buffer;
  private readonly memo = new Map<string, Uint8Array>();
  /** Ids of bodies already hashed (a revalidated entry stores the same body object again). */
  private readonly ids = new WeakMap<Uint8Array, string>();

  constructor(secret: string | Buffer) {
    this.idKey = Buffer.from(hkdfSync('sha256', secret, 'github-mirror/body-id', 'github-mirror body id v1', 32));
    this.sealBase = Buffer.from(hkdfSync('sha256', secret, 'github-mirror/body-seal', 'github-mirror body seal v1', 32));
  }

  /** The id a body is stored under: HMAC-SHA256 of its bytes under a key from the secret, 40 hex. */
  idOf(body: Uint8Array): string {
    let id = this.ids.get(body);
    if (id === undefined) {
      id = createHmac('sha256', this.idKey).update(body).digest('hex').slice(0, BODY_ID_LENGTH);
      this.ids.set(body, id);
    }
    return id;
  }

  /** Whether `body` is the body `id` names (constant time). */
  matches(id: string, body: Uint8Array): boolean {
    const actual = Buffer.from(createHmac('sha256', this.idKey).update(body).digest('hex').slice(0, BODY_ID_LENGTH), 'latin1');
    const expected = Buffer.from(id, 'latin1');
    return actual.byteLength === expected.byteLength && timingSafeEqual(actual, expected);
  }

  /** 32 bytes that seal the body `id` names. */
  sealKeyOf(id: string): Uint8Array {
    let key = this.memo.get(id);
    if (key === undefined) {
      key = new Uint8Array(createHmac('sha256', this.sealBase).update(id).digest());
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
      this.memo.set(id, key);
    }
    return key;
  }
}
