/**
 * What `npm run bench` prints: the table of rows (req/s, latencies, the server's CPU µs per request,
 * upstream calls per client request) and the goals of issue 13 as ratios of rows measured in the
 * same run, medians first and then per round.
 */

export interface Row {
  scenario: string;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  /** The server process's own CPU (user + system) over the measured window / client requests. */
  cpu_us_per_req?: number;
  /** Of which in the kernel (system calls); the rest is the process's own code (JavaScript, GC). */
  sys_us_per_req?: number;
  /** Requests the fake upstream answered during the window / client requests. */
  upstream_per_req?: number;
  /** What the server's JavaScript heap allocated over the window / client requests, KB: moves far less between runs than CPU. */
  heap_kb_per_req?: number;
  /** Rounds (1-based) whose upstream calls per request were not what the row measures (see `upstreamMisses`). */
  upstream_off_rounds?: number[];
}

/**
 * What a row measures fixes its upstream calls per client request: a revalidation makes one (`every`),
 * a fresh hit none (`none`), a coalesced hot key some (not checked). A row off its expectation
 * measures something else (a floor that stopped replaying, a cache that stopped revalidating).
 */
export type UpstreamExpectation = 'every' | 'none';

/** The rounds (1-based) whose upstream/req misses the expectation: < 0.99 for `every`, > 0.01 for `none`. */
export function upstreamMisses(expect: UpstreamExpectation, perRound: number[]): number[] {
  const off = (value: number) => (expect === 'every' ? value < 0.99 : value > 0.01);
  return perRound.flatMap((value, i) => (off(value) ? [i + 1] : []));
}

/** One line per row whose upstream calls were off in some rounds; none when every row measured what it says. */
export function upstreamWarnings(rows: Row[]): string[] {
  return rows
    .filter((r) => (r.upstream_off_rounds?.length ?? 0) > 0)
    .map((r) => `! ${r.scenario}: upstream/req off what the row measures in rounds ${(r.upstream_off_rounds ?? []).join(', ')}: its figures (and the goals using them) do not hold`);
}

/** One round's figures of one scenario. */
export type RoundFigures = Pick<Row, 'rps' | 'p99_ms' | 'cpu_us_per_req'>;

export function printTable(rows: Row[]): void {
  const header = ['scenario', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU µs/req', 'of it sys', 'upstream/req', 'heap KB/req', 'errors', 'non-2xx'];
  const optional = (value: number | undefined, digits: number) => (value === undefined ? '-' : value.toFixed(digits));
  const lines = rows.map((r) => [
    r.scenario,
    String(r.rps),
    String(r.p50_ms),
    String(r.p90_ms),
    String(r.p99_ms),
    optional(r.cpu_us_per_req, 0),
    optional(r.sys_us_per_req, 0),
    optional(r.upstream_per_req, 3),
    optional(r.heap_kb_per_req, 1),
    String(r.errors),
    String(r.non2xx),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') + ' |';
  console.log(fmt(header));
  console.log('|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
}

interface Goal {
  label: string;
  scenario: string;
  floor: string;
  figure: 'cpu_us_per_req' | 'p99_ms' | 'rps';
  op: '≤' | '≥';
  target: number;
}

const GOALS: Goal[] = [
  { label: 'revalidated hit, memory: CPU', scenario: 'mirror-memory-revalidate-distinct', floor: 'floor-cache-distinct', figure: 'cpu_us_per_req', op: '≤', target: 1.3 },
  { label: 'revalidated hit, Redis:  CPU', scenario: 'mirror-redis-revalidate-distinct', floor: 'floor-cache-distinct', figure: 'cpu_us_per_req', op: '≤', target: 1.3 },
  { label: 'revalidated hit, memory: p99', scenario: 'mirror-memory-revalidate-distinct', floor: 'floor-cache-distinct', figure: 'p99_ms', op: '≤', target: 2 },
  { label: 'revalidated hit, Redis:  p99', scenario: 'mirror-redis-revalidate-distinct', floor: 'floor-cache-distinct', figure: 'p99_ms', op: '≤', target: 2 },
  { label: 'fresh hit:               CPU', scenario: 'mirror-memory-fresh', floor: 'floor-cache-hit', figure: 'cpu_us_per_req', op: '≤', target: 0.5 },
  { label: 'coalesced hot key:     req/s', scenario: 'mirror-memory-hit', floor: 'floor-cache-hit', figure: 'rps', op: '≥', target: 1 },
];

/** The goals of issue 13 as ratios of this run's rows, with the spread of the per-round ratios. */
export function printGoals(rows: Row[], perRound: Array<Record<string, RoundFigures>>): void {
  const find = (name: string) => rows.find((r) => r.scenario === name);
  const lines: string[] = [];
  for (const goal of GOALS) {
    const mirror = find(goal.scenario)?.[goal.figure];
    const floor = find(goal.floor)?.[goal.figure];
    if (mirror === undefined || floor === undefined) continue;
    const ratio = mirror / floor;
    const met = goal.op === '≤' ? ratio <= goal.target : ratio >= goal.target;
    const rounds = perRound
      .map((round) => {
        const a = round[goal.scenario]?.[goal.figure];
        const b = round[goal.floor]?.[goal.figure];
        return a === undefined || b === undefined ? NaN : a / b;
      })
      .filter((value) => Number.isFinite(value))
      .sort((a, b) => a - b);
    const spread =
      rounds.length === 0
        ? '-'
        : rounds.length <= 3
          ? rounds.map((value) => value.toFixed(2)).join(', ')
          : `${(rounds[0] as number).toFixed(2)}–${(rounds[rounds.length - 1] as number).toFixed(2)}, median ${(rounds[Math.floor(rounds.length / 2)] as number).toFixed(2)}`;
    const off = [goal.scenario, goal.floor].filter((name) => (find(name)?.upstream_off_rounds?.length ?? 0) > 0);
    const verdict = off.length > 0 ? `not measured: ${off.join(', ')} off its load` : met ? 'met' : 'NOT met';
    lines.push(`  ${goal.label} ${goal.scenario} / ${goal.floor} = ${ratio.toFixed(2)} (goal ${goal.op} ${goal.target}: ${verdict}; per round ${spread})`);
  }
  // Not a goal: how far the fresh-hit goal is from the cheapest fresh hit a Node cache can serve.
  const fresh = find('mirror-memory-fresh')?.cpu_us_per_req;
  const freshFloor = find('floor-cache-fresh')?.cpu_us_per_req;
  const hitFloor = find('floor-cache-hit')?.cpu_us_per_req;
  if (fresh !== undefined && freshFloor !== undefined && freshFloor > 0) {
    const ofHit = hitFloor === undefined || hitFloor <= 0 ? '' : `; floor-cache-fresh / floor-cache-hit = ${(freshFloor / hitFloor).toFixed(2)}, so the goal's 0.5 is ${((0.5 * hitFloor) / freshFloor).toFixed(2)} × the replay`;
    lines.push(`  fresh hit, for scale:    CPU mirror-memory-fresh / floor-cache-fresh = ${(fresh / freshFloor).toFixed(2)} (a Map replaying its stored 200, no goal${ofHit})`);
  }
  if (lines.length === 0) return;
  console.log('\ngoals of issue 13 (mirror / floor, same run):');
  for (const line of lines) console.log(line);
}
