/**
 * `npm run bench:profile -- FILE.cpuprofile [--cpu-us N] [--top K] [--match REGEX]`: what a CPU profile
 * of a bench server (`npm run bench -- --only X --cpu-prof DIR`) says, in two tables.
 *
 * - By category: self time grouped by package (`nm:undici`, `nm:fastify`, …), by our directory
 *   (`src/adapters/http`, `src/domain/use-cases`, …), node's own modules, GC and the native calls.
 * - By function (`--match` narrows them, default our own `src/`): self time.
 *
 * Idle time is left out. The profiler samples wall time: a native socket write (`writev`,
 * `writeLatin1String`) that wakes the process on the other end is descheduled inside the call on a
 * 2-core machine and looks far larger than the system time `process.cpuUsage()` counts for it. So
 * with `--cpu-us N` (the row's CPU µs/req) and `--sys-us S` (its `of it sys`), the JavaScript
 * categories — everything but those native writes and module loading at start-up — are scaled to
 * N − S µs per request, which is what they cost.
 */
import { readFileSync } from 'node:fs';
import { arg } from './cli-args.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv.slice(2).find((value, i, all) => !value.startsWith('--') && (i === 0 || !(all[i - 1] as string).startsWith('--')));
if (file === undefined) {
  process.stderr.write('usage: npm run bench:profile -- FILE.cpuprofile [--cpu-us N --sys-us S] [--top K] [--match REGEX]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const cpuUs = Number(arg('cpu-us', '0'));
const sysUs = Number(arg('sys-us', '0'));
const top = Number(arg('top', '30'));
const match = new RegExp(arg('match', '/src/'));

const NATIVE_WRITES = new Set(['writev', 'writeLatin1String', 'writeUtf8String', 'writeBuffer']);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfById = new Map<number, number>();
profile.samples.forEach((id, i) => selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

function category(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)') return 'program';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `nm:${pkg[1] as string}`;
  const ours = /\/(src\/[^/]+\/[^/]+|src\/[^/]+\.js|bench)\//.exec(url) ?? /\/(src\/[^/]+)\//.exec(url);
  if (ours) return ours[1] as string;
  if (url.startsWith('node:')) return /loader|modules/.test(url) ? 'node:modules (start-up)' : `node:${/node:(?:internal\/)?([^/]+)/.exec(url)?.[1] ?? url}`;
  if (url === '') return `native:${functionName}`;
  return 'other';
}

/** Not scaled to per-request JavaScript: the native socket writes (wall time, see above) and module loading (start-up). */
const unscaled = (name: string) => name.startsWith('node:modules') || (name.startsWith('native:') && NATIVE_WRITES.has(name.slice(7)));

const categories = new Map<string, number>();
const functions = new Map<string, number>();
let busy = 0;
/** Profile time of the unscaled categories. */
let writes = 0;
for (const [id, time] of selfById) {
  const node = byId.get(id) as ProfileNode;
  const name = category(node);
  if (name === 'idle') continue;
  busy += time;
  if (unscaled(name)) writes += time;
  categories.set(name, (categories.get(name) ?? 0) + time);
  if (match.test(node.callFrame.url)) {
    const where = node.callFrame.url.replace(/^.*?\/(src|bench)\//, '$1/').replace(/^.*node_modules\//, 'nm:');
    const label = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
    functions.set(label, (functions.get(label) ?? 0) + time);
  }
}
// µs per request of a profile microsecond of JavaScript (everything but the native writes)
const jsScale = cpuUs > 0 ? (cpuUs - sysUs) / Math.max(1, busy - writes) : 0;
const cell = (time: number, native: boolean) => {
  const share = `${((100 * time) / busy).toFixed(1).padStart(5)} %`;
  if (jsScale === 0) return share;
  return `${share}  ${native ? '     —' : (time * jsScale).toFixed(1).padStart(6)} µs/req`;
};
console.log(`${file}: ${(busy / 1000).toFixed(0)} ms busy of ${(profile.timeDeltas.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} ms sampled`);
console.log('\n-- self time by category');
for (const [name, time] of [...categories].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${cell(time, unscaled(name))}  ${name}`);
}
console.log(`\n-- self time by function (${match.source})`);
for (const [name, time] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${cell(time, false)}  ${name}`);
