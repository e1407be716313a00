/** What the benchmark asks for: a realistic repository object (~4.5 KB of JSON), the tokens, the fill resources. */
export const BENCH_RESOURCE = '/repos/octokit-fixture-org/hello-world';
export const BENCH_TOKEN = 'token bench-token';
/** Sent with every request, as GitHub clients do (it is part of GitHub's ETag). */
export const BENCH_ACCEPT = 'application/vnd.github+json';

export const BENCH_BODY = {
  id: 1000,
  name: 'hello-world',
  full_name: 'octokit-fixture-org/hello-world',
  private: false,
  description: 'A repository used by the benchmark',
  topics: Array.from({ length: 20 }, (_, i) => `topic-${i}`),
  urls: Array.from({ length: 40 }, (_, i) => `https://api.github.com/repos/octokit-fixture-org/hello-world/thing-${i}{/id}`),
  counters: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`counter_${i}`, i * 37])),
};

/** The distinct-token load: this many Authorization values taken in turn, one per request. */
export const DISTINCT_TOKENS = 256;

/** `count` distinct credentials (`token bench-distinct-0000` …). */
export function distinctTokens(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `token bench-distinct-${String(i).padStart(4, '0')}`);
}

/** Distinct resources that fill a cache: `/bench/items/<n>`, each a different ~4 KB object. */
export const ITEM_PREFIX = '/bench/items/';

/** The body of item `n`, its URLs pointing at `base` (so the mirror rewrites them, as for BENCH_RESOURCE). */
export function itemBody(n: number, base: string): string {
  const self = `${base}${ITEM_PREFIX}${n}`;
  return JSON.stringify({
    id: n,
    name: `item-${n}`,
    url: self,
    links: Array.from({ length: 24 }, (_, i) => `${self}/link-${i}{/id}`),
    fields: Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`field_${i}`, (n * 31 + i * 17) % 100_003])),
    notes: 'a cached body of the memory fill; '.repeat(53),
  });
}
