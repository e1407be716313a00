/**
 * Whether a served GET/HEAD spent primary quota, and if not why (the `github_mirror_quota_saved_total`
 * metric): a fresh-window hit makes no call, a request coalesced onto another's call makes none of its
 * own, and GitHub does not count a 304 to an authenticated request.
 */
import { Outcome, type Outcome as OutcomeValue } from './model.js';
import type { QuotaSaving } from './events/events.js';

export function quotaSaving(outcome: OutcomeValue, collapsed: boolean, credential: string | undefined): QuotaSaving | undefined {
  if (collapsed) return 'coalesced';
  if (outcome === Outcome.FRESH_HIT) return 'fresh';
  if (outcome === Outcome.ONLINE_HIT && credential !== undefined) return 'not_modified';
  return undefined;
}
