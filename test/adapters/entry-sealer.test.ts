import test from 'ava';
import { randomBytes } from 'node:crypto';
import { seal, open, SealError, isSealed } from '../../src/adapters/crypto/entry-sealer.js';

const key = randomBytes(32);

test('round trip; ciphertext does not contain the plaintext', (t) => {
  const plain = Buffer.from('{"login":"octocat","private":"secret body"}');
  const sealed = seal(plain, key, 'k1');
  t.true(isSealed(sealed));
  t.is(sealed.indexOf('secret body'), -1);
  t.deepEqual(open(sealed, key, 'k1'), plain);
  t.notDeepEqual(seal(plain, key, 'k1'), sealed, 'a fresh IV every time');
});

test('another key, another AAD, a flipped bit or garbage do not open', (t) => {
  const sealed = seal(Buffer.from('body'), key, 'k1');
  t.throws(() => open(sealed, randomBytes(32), 'k1'), { instanceOf: SealError });
  t.throws(() => open(sealed, key, 'k2'), { instanceOf: SealError });
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
  t.throws(() => open(flipped, key, 'k1'), { instanceOf: SealError });
  t.throws(() => open(Buffer.from('not sealed at all, just bytes'), key, 'k1'), { instanceOf: SealError });
});
