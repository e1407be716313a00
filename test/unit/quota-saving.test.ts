/**
 * Which served answers spent no primary quota (github_mirror_quota_saved_total's reason).
 */
import test from 'ava';
import { quotaSaving } from '../../src/domain/quota-saving.js';
import { Outcome } from '../../src/domain/model.js';

test('fresh hits, authenticated 304s and coalesced requests are saved; the rest spent quota', (t) => {
  t.is(quotaSaving(Outcome.FRESH_HIT, false, undefined), 'fresh');
  t.is(quotaSaving(Outcome.FRESH_HIT, false, 'token x'), 'fresh');
  t.is(quotaSaving(Outcome.ONLINE_HIT, false, 'token x'), 'not_modified');
  t.is(quotaSaving(Outcome.ONLINE_HIT, false, undefined), undefined, 'an anonymous 304 is charged');
  t.is(quotaSaving(Outcome.ONLINE_MISS, true, undefined), 'coalesced');
  t.is(quotaSaving(Outcome.ONLINE_HIT, true, 'token x'), 'coalesced');
  t.is(quotaSaving(Outcome.ONLINE_MISS, false, 'token x'), undefined);
  t.is(quotaSaving(Outcome.RATE_LIMITED_HIT, false, 'token x'), undefined);
});
