/**
 * The bench's check that a row measured what its name says (bench/report.ts): a revalidation row
 * makes one upstream call per client request, a fresh-hit row none. A row off its load is flagged,
 * and the goals that use it say so instead of "met" or "NOT met".
 */
import test from 'ava';
import { printGoals, upstreamMisses, upstreamWarnings, type Row } from '../../bench/report.js';

const row = (scenario: string, cpu: number, off?: number[]): Row => ({
  scenario,
  rps: 1000,
  p50_ms: 1,
  p90_ms: 1,
  p99_ms: 1,
  errors: 0,
  non2xx: 0,
  cpu_us_per_req: cpu,
  ...(off ? { upstream_off_rounds: off } : {}),
});

test('a revalidation row must ask upstream for every request, a fresh row for none', (t) => {
  t.deepEqual(upstreamMisses('every', [1, 0.995, 0.98, 1]), [3]);
  t.deepEqual(upstreamMisses('none', [0, 0.002, 0.5, 1]), [3, 4]);
  t.deepEqual(upstreamMisses('none', []), []);
});

test('only rows off their load get a warning, naming the rounds', (t) => {
  const warnings = upstreamWarnings([row('floor-cache-hit', 100, []), row('floor-cache-fresh', 50, [4, 5]), row('mirror-memory-hit', 90)]);
  t.is(warnings.length, 1);
  t.regex(warnings[0] ?? '', /^! floor-cache-fresh: .* rounds 4, 5:/);
});

test('a goal whose row is off its load is reported as not measured', (t) => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    printGoals([row('mirror-memory-fresh', 40), row('floor-cache-hit', 100, [2]), row('mirror-memory-revalidate-distinct', 120), row('floor-cache-distinct', 100, [])], []);
  } finally {
    console.log = log;
  }
  const fresh = printed.find((line) => line.includes('fresh hit: '));
  const revalidated = printed.find((line) => line.includes('revalidated hit, memory: CPU'));
  t.regex(fresh ?? '', /not measured: floor-cache-hit off its load/);
  t.regex(revalidated ?? '', /goal ≤ 1\.3: met/);
});
