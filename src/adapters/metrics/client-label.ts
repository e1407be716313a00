/**
 * The `client` label of the quota metrics: the first product token of the User-Agent (`octokit-rest.js`,
 * `PyGithub`, `curl`...), with a bounded number of distinct values over the life of the process.
 *
 * Why not a sliding top-K (space-saving, count-min): a counter's series must never move to another
 * label value, so a name, once a label, stays one; a top-K that evicts would mint new series forever.
 * Instead names are *admitted*: a name not yet a label is counted in a bounded candidate table (the
 * oldest candidate forgotten first) and becomes a label once seen `admitAfter` times, while fewer than
 * `maxLabels` labels exist (`none`, no User-Agent, is one from the start). Until then, and once the
 * labels are all taken, it is `other`. A flood of
 * random User-Agents (each seen once) never takes a slot; a real client takes one after a few requests.
 */

/** The label of a request without a User-Agent. */
export const NO_CLIENT = 'none';
/** The label of every name not (yet) admitted. */
export const OTHER_CLIENT = 'other';
/** Longest name kept (longer ones are cut). */
export const MAX_CLIENT_NAME = 32;

export interface ClientLabelsOptions {
  /** Distinct label values besides `other` (default 50). */
  maxLabels?: number;
  /** Sightings before a name becomes a label (default 3). */
  admitAfter?: number;
  /** Names counted while waiting for admission (default 1024). */
  maxCandidates?: number;
}

/** Characters kept from a product token: a readable subset of RFC 9110's tchar. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*/;
/**
 * Names that could be a credential pasted into the User-Agent (GitHub token prefixes, long hex, long
 * strings full of digits): never a label.
 */
const TOKEN_LIKE = /^(?:gh[pousr]_|github_pat_|v1\.)|^[0-9a-f]{16,}$/i;
/** Raw User-Agent → name memo (most clients send the same string every time). */
const MAX_MEMO = 1024;

/**
 * The first product token of a User-Agent without its version: `octokit-rest.js/20.0.1 octokit-core.js/5`
 * → `octokit-rest.js`. `none` when absent or empty, `other` when it does not start with a name or the
 * name looks like a credential.
 */
export function clientName(userAgent: string | undefined): string {
  if (userAgent === undefined) return NO_CLIENT;
  const trimmed = userAgent.trimStart();
  if (trimmed === '') return NO_CLIENT;
  const match = NAME.exec(trimmed);
  if (match === null) return OTHER_CLIENT;
  const name = match[0];
  if (TOKEN_LIKE.test(name) || looksRandom(name)) return OTHER_CLIENT;
  return name.slice(0, MAX_CLIENT_NAME);
}

/** 20 characters or more with at least 4 digits: more like a key or an id than a product name. */
function looksRandom(name: string): boolean {
  if (name.length < 20) return false;
  let digits = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++digits >= 4) return true;
  }
  return false;
}

export class ClientLabels {
  private readonly maxLabels: number;
  private readonly admitAfter: number;
  private readonly maxCandidates: number;
  private readonly labels = new Set<string>();
  private readonly candidates = new Map<string, number>();
  private readonly memo = new Map<string, string>();

  constructor(options: ClientLabelsOptions = {}) {
    this.maxLabels = Math.max(0, options.maxLabels ?? 50);
    this.admitAfter = Math.max(1, options.admitAfter ?? 3);
    this.maxCandidates = Math.max(1, options.maxCandidates ?? 1024);
    // requests without a User-Agent are a label from the start (one of the maxLabels)
    if (this.maxLabels > 0) this.labels.add(NO_CLIENT);
  }

  /** The label of one request with this User-Agent (counts the sighting). */
  labelFor(userAgent: string | undefined): string {
    let name = userAgent === undefined ? NO_CLIENT : this.memo.get(userAgent);
    if (name === undefined) {
      name = clientName(userAgent);
      if (this.memo.size >= MAX_MEMO) this.memo.clear();
      this.memo.set(userAgent as string, name);
    }
    if (this.labels.has(name)) return name;
    if (name === OTHER_CLIENT || this.labels.size >= this.maxLabels) return OTHER_CLIENT;
    const seen = (this.candidates.get(name) ?? 0) + 1;
    if (seen >= this.admitAfter) {
      this.candidates.delete(name);
      this.labels.add(name);
      return name;
    }
    this.candidates.delete(name);
    if (this.candidates.size >= this.maxCandidates) {
      const oldest = this.candidates.keys().next().value;
      if (oldest !== undefined) this.candidates.delete(oldest);
    }
    this.candidates.set(name, seen);
    return OTHER_CLIENT;
  }

  /** The names admitted so far (tests, docs). */
  admitted(): string[] {
    return [...this.labels];
  }
}
