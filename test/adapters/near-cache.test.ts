/**
 * NearCache alone (no Redis): the read/invalidation races decided by tickets, flushes and disarming,
 * the expiry a copy gets from the read's PTTL, seal keys, and the byte bound with its second chance.
 */
import test from 'ava';
import { NearCache } from '../../src/adapters/cache/redis/near-cache.js';

const KEY_A = new Uint8Array([1, 2, 3]);
const KEY_B = new Uint8Array([4, 5, 6]);

function armed(maxBytes = 1 << 20): { near: NearCache<string>; clock: { t: number } } {
  const clock = { t: 1000 };
  const near = new NearCache<string>(maxBytes, () => clock.t);
  near.arm();
  return { near, clock };
}

function fill(near: NearCache<string>, name: string, value: string, opts: { ttlMs?: number; depends?: string; sealKey?: Uint8Array; sentAt?: number } = {}): void {
  const ticket = near.begin();
  near.keep(ticket, name, opts.sealKey ?? KEY_A, value, value.length, opts.sentAt ?? 1000, opts.ttlMs ?? 60_000, opts.depends);
  near.settle(ticket);
}

test('a kept value is served with its seal key only, and dropped by its invalidation', (t) => {
  const { near } = armed();
  fill(near, 'k', 'v1');
  t.is(near.get('k', KEY_A), 'v1');
  t.is(near.get('k', KEY_B), undefined, 'another seal key finds nothing');
  t.is(near.get('k', undefined), undefined);
  near.invalidate('k');
  t.is(near.get('k', KEY_A), undefined);
  t.is(near.counters.hits, 1);
});

test('an invalidation that arrives before the read’s reply voids it (the pending-read race)', (t) => {
  const { near } = armed();
  const ticket = near.begin();
  near.invalidate('k'); // the write happened after Redis answered the read; its message overtook the reply
  near.keep(ticket, 'k', KEY_A, 'stale', 5, 1000, 60_000);
  near.settle(ticket);
  t.is(near.get('k', KEY_A), undefined);
  t.is(near.counters.voided, 1);
  // a read begun after that invalidation is kept
  fill(near, 'k', 'fresh');
  t.is(near.get('k', KEY_A), 'fresh');
});

test('the invalidation of the other key a value was read from (a shared body) voids the read and drops the copies', (t) => {
  const { near } = armed();
  const ticket = near.begin();
  near.invalidate('body');
  near.keep(ticket, 'e1', KEY_A, 'stale', 5, 1000, 60_000, 'body');
  near.settle(ticket);
  t.is(near.get('e1', KEY_A), undefined);
  fill(near, 'e1', 'v1', { depends: 'body' });
  fill(near, 'e2', 'v2', { depends: 'body' });
  fill(near, 'e3', 'v3', { depends: 'other' });
  near.invalidate('body');
  t.is(near.get('e1', KEY_A), undefined);
  t.is(near.get('e2', KEY_A), undefined);
  t.is(near.get('e3', KEY_A), 'v3');
});

test('other keys’ invalidations do not void a read; concurrent reads each keep what they may', (t) => {
  const { near } = armed();
  const first = near.begin();
  const second = near.begin();
  near.invalidate('unrelated');
  near.keep(first, 'k1', KEY_A, 'v1', 2, 1000, 60_000);
  near.settle(first);
  near.invalidate('k2');
  near.keep(second, 'k2', KEY_A, 'old', 3, 1000, 60_000);
  near.settle(second);
  t.is(near.get('k1', KEY_A), 'v1');
  t.is(near.get('k2', KEY_A), undefined);
});

test('a flush, a disarm or a re-arm during a read voids it; disarmed, nothing is served or kept', (t) => {
  const { near } = armed();
  fill(near, 'k', 'v');
  let ticket = near.begin();
  near.flush();
  near.keep(ticket, 'j', KEY_A, 'v', 1, 1000, 60_000);
  near.settle(ticket);
  t.is(near.get('k', KEY_A), undefined);
  t.is(near.get('j', KEY_A), undefined);

  ticket = near.begin();
  near.disarm();
  near.arm();
  near.keep(ticket, 'j', KEY_A, 'v', 1, 1000, 60_000);
  near.settle(ticket);
  t.is(near.get('j', KEY_A), undefined, 'a read sent before the re-arm is not kept');

  fill(near, 'k', 'v');
  near.disarm();
  t.is(near.get('k', KEY_A), undefined);
  t.is(near.begin(), -1);
  near.keep(-1, 'k', KEY_A, 'v', 1, 1000, 60_000);
  near.arm();
  t.is(near.get('k', KEY_A), undefined);
});

test('a copy expires at the time its read was sent plus the PTTL it returned; -1 = only invalidations end it', (t) => {
  const { near, clock } = armed();
  fill(near, 'k', 'v', { sentAt: 1000, ttlMs: 500 });
  fill(near, 'forever', 'v', { ttlMs: -1 });
  clock.t = 1499;
  t.is(near.get('k', KEY_A), 'v');
  clock.t = 1500;
  t.is(near.get('k', KEY_A), undefined);
  clock.t = 10_000_000;
  t.is(near.get('forever', KEY_A), 'v');
  fill(near, 'gone', 'v', { ttlMs: -2 });
  t.is(near.get('gone', KEY_A), undefined);
});

test('bounded by bytes: the oldest go first, a copy hit since gets a second chance', (t) => {
  const { near } = armed(16 * 1024);
  const value = 'x'.repeat(600); // + name + overhead ≈ 770 B: ~21 fit
  for (let i = 0; i < 10; i += 1) fill(near, `k${i}`, value);
  t.is(near.get('k0', KEY_A), value);
  for (let i = 10; i < 40; i += 1) fill(near, `k${i}`, value);
  t.true(near.size.bytes <= 16 * 1024, String(near.size.bytes));
  t.true(near.counters.evictions > 0);
  t.is(near.get('k0', KEY_A), value, 'hit: kept over the ones never hit');
  t.is(near.get('k1', KEY_A), undefined);
  t.is(near.get('k39', KEY_A), value);
  fill(near, 'huge', 'y'.repeat(2000)); // over a sixteenth of the bound: not kept
  t.is(near.get('huge', KEY_A), undefined);
});

test('many invalidations during a long read void it rather than grow without bound', (t) => {
  const { near } = armed();
  const ticket = near.begin();
  for (let i = 0; i < 10_000; i += 1) near.invalidate(`other${i}`);
  near.keep(ticket, 'k', KEY_A, 'v', 1, 1000, 60_000);
  near.settle(ticket);
  t.is(near.get('k', KEY_A), undefined);
  fill(near, 'k', 'v');
  t.is(near.get('k', KEY_A), 'v');
});
