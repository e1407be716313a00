/** OpenedValues: same bytes and same seal key find what they opened to; anything else finds nothing; bounded by bytes. */
import test from 'ava';
import { OpenedValues } from '../../src/adapters/cache/redis/opened-values.js';

const key = (n: number) => new Uint8Array(32).fill(n);

test('same bytes with the same key (or an equal copy of it) only', (t) => {
  const memo = new OpenedValues<string>(1024);
  memo.set('a', Buffer.from('value-1'), key(1), 'opened');
  t.is(memo.get('a', Buffer.from('value-1'), key(1)), 'opened', 'an equal copy of the key');
  t.is(memo.get('a', Buffer.from('value-2'), key(1)), undefined, 'other bytes');
  t.is(memo.get('a', Buffer.from('value-1'), key(2)), undefined, 'another key');
  t.is(memo.get('a', Buffer.from('value-1'), undefined), undefined, 'no key');
  t.is(memo.get('b', Buffer.from('value-1'), key(1)), undefined, 'another name');
  memo.delete('a');
  t.is(memo.get('a', Buffer.from('value-1'), key(1)), undefined);
});

test('bounded by bytes: the oldest go first; a value over a sixteenth of the bound is not kept', (t) => {
  const memo = new OpenedValues<number>(1600);
  for (let i = 0; i < 20; i++) memo.set(`k${i}`, Buffer.alloc(90, i), undefined, i, 10);
  t.is(memo.get('k0', Buffer.alloc(90, 0), undefined), undefined, 'the oldest went');
  t.is(memo.get('k19', Buffer.alloc(90, 19), undefined), 19);
  t.is(memo.get('k4', Buffer.alloc(90, 4), undefined), 4, '16 × 100 bytes fit');
  memo.set('big', Buffer.alloc(101), undefined, -1);
  t.is(memo.get('big', Buffer.alloc(101), undefined), undefined);
  memo.clear();
  t.is(memo.get('k19', Buffer.alloc(90, 19), undefined), undefined);
});
