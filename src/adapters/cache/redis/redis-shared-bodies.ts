/**
 * The shared storage layout in Redis (docs/architecture.md, "Storage layout"; names and values in
 * ../shared-layout.ts). A resource's entries, bodies and index share one hash tag, so each operation
 * is one Lua script on the one node that owns the slot — one round trip, Cluster-safe, no cross-slot
 * command:
 *
 * - lookup: GET the entry, read the body id from its clear prefix, GET the body (or only check that
 *   it exists, PTTL, when this process already holds it decoded), and the TTL both have left (for the
 *   near cache). Read-only: runs on a reader replica too.
 * - store: SET the entry, SET the body (or, when this process holds it decoded already, only extend
 *   its TTL to the entry's; a script that finds it gone asks for the bytes), put the body first in the
 *   resource's index (at most INDEX_MAX records). A body is the same bytes under its id whoever writes
 *   it, so rewriting one only repairs a damaged value.
 * - representations: GET the index and the bodies it names.
 * - forget: DEL the entry.
 *
 * A resource's counts (a hash `{<resourceKey>}n`: body id → entries known to point at it) let the
 * store and forget scripts delete a body when the last entry leaves it (a resource that changed
 * does not keep its old bodies for a whole TTL). Counts are bookkeeping, not data: snapshots leave
 * them out (the dump reads strings), and a body without a count simply expires with its TTL.
 *
 * A body TTL is never shorter than its newest entry's, so a dangling pointer only comes from eviction
 * (maxmemory) or tampering: a miss, never an error.
 */
import type { Cluster, Redis } from 'ioredis';
import type { CachedEntry, StoredRepresentation } from '../../../domain/model.js';
import type { BodyKeys } from '../../crypto/body-keys.js';
import { resourceHeaders } from '../../../domain/http-semantics.js';
import type { EncodeOptions } from '../entry-codec.js';
import { OpenedValues } from './opened-values.js';
import { CorruptEntryError, CorruptReason } from '../entry-codec.errors.js';
import {
  INDEX_MAX,
  INDEX_RECORD_LENGTH,
  indexRecord,
  INDEX_MAGIC,
  joinBody,
  ownEntry,
  parseIndex,
  readBody,
  readPointer,
  type PointerResult,
  representationOf,
  sharedName,
  storedRepresentation,
  writeBody,
  writePointer,
} from '../shared-layout.js';

// KEYS[2]: the body the entry pointed at when last read here (or the bare body prefix): a key a
// script declares is what Redis 7.0 tracks for client-side caching, not the names it builds itself.
// Returns {entry, body (or 1: the known body ARGV[2] is there; 0: gone), the PTTL both have left
// (-1: no expiry), 1 when the body read is KEYS[2] (tracked: the near cache may keep the result)}
const LOOKUP = `
local e = redis.call('GET', KEYS[1])
if not e then return false end
local t = redis.call('PTTL', KEYS[1])
if string.sub(e, 1, 2) ~= 'P1' then return {e, 0, t, 0} end
local id = string.sub(e, 3, 42)
local bk = ARGV[1] .. id
local tracked = 0
if bk == KEYS[2] then tracked = 1 end
local bt = redis.call('PTTL', bk)
if bt == -2 then return {e, 0, t, tracked} end
if t < 0 or (bt >= 0 and bt < t) then t = bt end
if id == ARGV[2] then return {e, 1, t, tracked} end
return {e, redis.call('GET', bk), t, tracked}
`;

const STORE = `
local ttl = tonumber(ARGV[2])
local id = string.sub(ARGV[4], 1, 40)
local bt = redis.call('PTTL', KEYS[2])
if ARGV[3] == '' and bt == -2 then return 0 end
local old = redis.call('GET', KEYS[1])
local oldId = false
if old and string.sub(old, 1, 2) == 'P1' then oldId = string.sub(old, 3, 42) end
if ARGV[3] ~= '' then
  -- the same id is the same body: rewriting it changes nothing but repairs a damaged value
  local keep = ttl
  if bt > keep then keep = bt end
  redis.call('SET', KEYS[2], ARGV[3], 'PX', keep)
elseif bt >= 0 and bt < ttl then
  -- with some slack (an eighth of the TTL, at most an hour): the next stores leave the body alone,
  -- so the near caches of other replicas holding it are not invalidated by every entry's store
  redis.call('PEXPIRE', KEYS[2], ttl + math.min(math.floor(ttl / 8), 3600000))
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
local dropped = false
if oldId ~= id then
  redis.call('HINCRBY', KEYS[4], id, 1)
  -- the entry left its old body: the last entry known to point at a body takes it away (a body with
  -- no count, e.g. restored from a snapshot, just expires)
  if oldId and redis.call('HEXISTS', KEYS[4], oldId) == 1 and redis.call('HINCRBY', KEYS[4], oldId, -1) <= 0 then
    redis.call('HDEL', KEYS[4], oldId)
    redis.call('DEL', ARGV[7] .. oldId)
    dropped = oldId
  end
end
local ct = redis.call('PTTL', KEYS[4])
if ct < ttl then redis.call('PEXPIRE', KEYS[4], ttl) end
local rec = ARGV[4]
local len = tonumber(ARGV[6])
local out = {'${INDEX_MAGIC}', rec}
local idx = redis.call('GET', KEYS[3])
if idx and string.sub(idx, 1, 2) == '${INDEX_MAGIC}' then
  local max = tonumber(ARGV[5])
  local n = 1
  local at = 3
  while at + len - 1 <= #idx and n < max do
    local r = string.sub(idx, at, at + len - 1)
    local rid = string.sub(r, 1, 40)
    if rid ~= id and rid ~= dropped then
      out[#out + 1] = r
      n = n + 1
    end
    at = at + len
  end
end
local it = redis.call('PTTL', KEYS[3])
if it > ttl then ttl = it end
redis.call('SET', KEYS[3], table.concat(out), 'PX', ttl)
return 1
`;

const FORGET = `
local old = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if not old or string.sub(old, 1, 2) ~= 'P1' then return 0 end
local oldId = string.sub(old, 3, 42)
if redis.call('HEXISTS', KEYS[2], oldId) == 1 and redis.call('HINCRBY', KEYS[2], oldId, -1) <= 0 then
  redis.call('HDEL', KEYS[2], oldId)
  redis.call('DEL', ARGV[1] .. oldId)
end
return 1
`;

const REPRESENTATIONS = `
local idx = redis.call('GET', KEYS[1])
if not idx or string.sub(idx, 1, 2) ~= '${INDEX_MAGIC}' then return {} end
local len = tonumber(ARGV[3])
local limit = tonumber(ARGV[2])
local out = {}
local n = 0
local at = 3
while at + len - 1 <= #idx and n < limit do
  local r = string.sub(idx, at, at + len - 1)
  local b = redis.call('GET', ARGV[1] .. string.sub(r, 1, 40))
  if b then
    out[#out + 1] = r
    out[#out + 1] = b
    n = n + 1
  end
  at = at + len
end
return out
`;

/** The scripts as ioredis commands (EVALSHA, EVAL on NOSCRIPT; routed by their first key). */
interface SharedCommands {
  ghmSharedLookupBuffer(entry: string, hintedBody: string, bodyPrefix: string, knownBodyId: string): Promise<[Buffer, Buffer | number, number, number] | null>;
  ghmSharedStore(
    entry: string,
    body: string,
    index: string,
    counts: string,
    value: Buffer,
    ttlMs: number,
    bodyValue: Buffer | '',
    record: string,
    max: number,
    recordLength: number,
    bodyPrefix: string,
  ): Promise<number>;
  ghmSharedForget(entry: string, counts: string, bodyPrefix: string): Promise<number>;
  ghmSharedRepresentationsBuffer(index: string, bodyPrefix: string, limit: number, recordLength: number): Promise<Buffer[]>;
}

/** Defines the scripts on a client (once per client). */
export function defineSharedCommands(client: Redis | Cluster): void {
  if (typeof (client as unknown as Partial<SharedCommands>).ghmSharedStore === 'function') return;
  client.defineCommand('ghmSharedLookup', { numberOfKeys: 2, lua: LOOKUP });
  client.defineCommand('ghmSharedStore', { numberOfKeys: 4, lua: STORE });
  client.defineCommand('ghmSharedForget', { numberOfKeys: 2, lua: FORGET });
  client.defineCommand('ghmSharedRepresentations', { numberOfKeys: 1, lua: REPRESENTATIONS });
}

const commands = (client: Redis | Cluster): SharedCommands => client as unknown as SharedCommands;

/**
 * A found entry comes with what the near cache needs: the body's full key name (the value depends on
 * it too), the PTTL entry and body both have left (-1: no expiry), and whether the body was read
 * under a declared key (tracked by Redis; otherwise the result must not be kept).
 */
export type SharedLookup =
  | { found: false }
  | { found: true; entry: CachedEntry; bodyName: string; ttlMs: number; tracked: boolean }
  | { found: false; corrupt: CorruptEntryError };

/** Decoded bodies this process holds, by resource and id (bodies are immutable under their id). */
class BodyMemo {
  private readonly bodies = new Map<string, CachedEntry>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get(resourceKey: string, bodyId: string): CachedEntry | undefined {
    return this.bodies.get(`${resourceKey}:${bodyId}`);
  }

  set(resourceKey: string, bodyId: string, body: CachedEntry): void {
    const key = `${resourceKey}:${bodyId}`;
    if (this.bodies.has(key) || body.body.byteLength > this.maxBytes / 16) return;
    this.bodies.set(key, body);
    this.bytes += body.body.byteLength;
    for (const [oldest, held] of this.bodies) {
      if (this.bytes <= this.maxBytes) break;
      this.bodies.delete(oldest);
      this.bytes -= held.body.byteLength;
    }
  }

  delete(resourceKey: string, bodyId: string): void {
    const key = `${resourceKey}:${bodyId}`;
    const held = this.bodies.get(key);
    if (held === undefined) return;
    this.bodies.delete(key);
    this.bytes -= held.body.byteLength;
  }

  clear(): void {
    this.bodies.clear();
    this.bytes = 0;
  }
}

export interface RedisSharedBodiesOptions {
  prefix: string;
  keys: BodyKeys;
  codec?: EncodeOptions;
  /** Bytes of decoded bodies kept in process (default 16 MiB). */
  memoBytes?: number;
}

/** Bytes of pointers kept opened (RedisSharedBodies.opened): ~8,000 pointers of ~500 B. */
const OPENED_POINTER_BYTES = 4 * 1024 * 1024;

export class RedisSharedBodies {
  private readonly memo: BodyMemo;
  /** The body id each entry pointed at when last read or written here: the lookup's hint. */
  private readonly pointers = new Map<string, string>();
  /**
   * The bytes of each entry's pointer as last read here, and what they opened to: a lookup that reads
   * the same bytes again with the same seal key (a revalidated entry is written back at most once a
   * minute) neither decrypts nor decodes them.
   */
  private readonly opened = new OpenedValues<{ entry: CachedEntry; bodyId: string }>(OPENED_POINTER_BYTES);

  constructor(private readonly options: RedisSharedBodiesOptions) {
    this.memo = new BodyMemo(options.memoBytes ?? 16 * 1024 * 1024);
  }

  async lookup(client: Redis | Cluster, key: string, resourceKey: string, sealKey: Uint8Array | undefined): Promise<SharedLookup> {
    const name = sharedName.entry(resourceKey, key);
    const hint = this.pointers.get(name);
    const known = hint !== undefined && this.memo.get(resourceKey, hint) !== undefined ? hint : '';
    const bodyPrefix = this.options.prefix + sharedName.group(resourceKey) + 'b:';
    const reply = await commands(client).ghmSharedLookupBuffer(this.options.prefix + name, bodyPrefix + (hint ?? ''), bodyPrefix, known);
    if (reply === null) return { found: false };
    const [value, body, ttlMs, tracked] = reply;
    const last = this.opened.get(name, value, sealKey);
    let pointer: PointerResult;
    if (last !== undefined) {
      pointer = { ok: true, entry: last.entry, bodyId: last.bodyId };
    } else {
      pointer = readPointer(value, name, sealKey);
      if (!pointer.ok) {
        this.opened.delete(name);
        return { found: false, corrupt: pointer.error };
      }
      // a copy of its own size: the reply may be a view of a larger socket buffer
      this.opened.set(name, Buffer.from(value), sealKey, { entry: pointer.entry, bodyId: pointer.bodyId });
    }
    const { bodyId } = pointer;
    this.remember(name, bodyId);
    let rep: CachedEntry | undefined;
    if (body === 1 && bodyId === known) rep = this.memo.get(resourceKey, bodyId);
    else if (Buffer.isBuffer(body)) rep = this.openBody(resourceKey, bodyId, body);
    if (rep === undefined) {
      // gone (evicted) or unreadable: a miss; forget what this process held of it
      this.memo.delete(resourceKey, bodyId);
      if (Buffer.isBuffer(body)) return { found: false, corrupt: new CorruptEntryError(CorruptReason.SEAL, 'shared body unreadable') };
      return { found: false };
    }
    return { found: true, entry: joinBody(pointer.entry, rep), bodyName: bodyPrefix + bodyId, ttlMs, tracked: tracked === 1 };
  }

  async store(client: Redis | Cluster, key: string, resourceKey: string, entry: CachedEntry, ttlMs: number, sealKey: Uint8Array | undefined): Promise<void> {
    const { prefix, keys } = this.options;
    const bodyId = keys.idOf(entry.body);
    const name = sharedName.entry(resourceKey, key);
    const bodyName = sharedName.body(resourceKey, bodyId);
    const held = this.memo.get(resourceKey, bodyId);
    // the entry keeps only the headers the body record does not give it (the body we write, or the one held)
    const value = writePointer(name, ownEntry(entry, held?.headers ?? resourceHeaders(entry.headers)), bodyId, sealKey);
    const record = indexRecord(bodyId, entry.validatedAt);
    const run = (bodyValue: Buffer | ''): Promise<number> =>
      commands(client).ghmSharedStore(
        prefix + name,
        prefix + bodyName,
        prefix + sharedName.index(resourceKey),
        prefix + sharedName.counts(resourceKey),
        value,
        ttlMs,
        bodyValue,
        record,
        INDEX_MAX,
        INDEX_RECORD_LENGTH,
        prefix + sharedName.group(resourceKey) + 'b:',
      );
    const stored = held !== undefined ? await run('') : 0;
    if (stored === 0) await run(writeBody(bodyName, entry, bodyId, keys, this.options.codec));
    // what the body record holds: the resource's headers only, never this credential's
    if (held === undefined || stored === 0) this.memo.set(resourceKey, bodyId, representationOf(entry));
    this.remember(name, bodyId);
  }

  async representations(client: Redis | Cluster, resourceKey: string, limit: number): Promise<StoredRepresentation[]> {
    const { prefix } = this.options;
    const reply = await commands(client).ghmSharedRepresentationsBuffer(prefix + sharedName.index(resourceKey), prefix + sharedName.group(resourceKey) + 'b:', limit, INDEX_RECORD_LENGTH);
    const out: StoredRepresentation[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const [record] = parseIndex(INDEX_MAGIC + (reply[i] as Buffer).toString('latin1'));
      if (record === undefined) continue;
      const body = this.openBody(resourceKey, record.bodyId, reply[i + 1] as Buffer);
      if (body !== undefined) out.push(storedRepresentation(body, record.validatedAt));
    }
    return out;
  }

  /** Full Redis names (prefix included): the slot of a resource's group is that of any of them. */
  entryName(key: string, resourceKey: string): string {
    return this.options.prefix + sharedName.entry(resourceKey, key);
  }

  indexName(resourceKey: string): string {
    return this.options.prefix + sharedName.index(resourceKey);
  }

  async forget(client: Redis | Cluster, key: string, resourceKey: string): Promise<void> {
    const { prefix } = this.options;
    const name = sharedName.entry(resourceKey, key);
    this.pointers.delete(name);
    this.opened.delete(name);
    await commands(client).ghmSharedForget(prefix + name, prefix + sharedName.counts(resourceKey), prefix + sharedName.group(resourceKey) + 'b:');
  }

  clear(): void {
    this.memo.clear();
    this.pointers.clear();
    this.opened.clear();
  }

  private openBody(resourceKey: string, bodyId: string, value: Buffer): CachedEntry | undefined {
    const held = this.memo.get(resourceKey, bodyId);
    if (held !== undefined) return held;
    const opened = readBody(value, sharedName.body(resourceKey, bodyId), bodyId, this.options.keys);
    if (!opened.ok) return undefined;
    this.memo.set(resourceKey, bodyId, opened.entry);
    return opened.entry;
  }

  private remember(name: string, bodyId: string): void {
    if (this.pointers.get(name) === bodyId) return;
    if (this.pointers.size >= 50_000) this.pointers.clear();
    this.pointers.set(name, bodyId);
  }
}
