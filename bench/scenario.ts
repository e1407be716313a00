/** The resource every benchmark scenario asks for: a realistic repository object (~6 KB of JSON). */
export const BENCH_RESOURCE = '/repos/octokit-fixture-org/hello-world';
export const BENCH_TOKEN = 'token bench-token';

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
