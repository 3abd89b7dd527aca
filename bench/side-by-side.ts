/**
 * Two tandem services under steady's load at the same time, to compare two builds (or two
 * configurations) on this machine. One `npm run bench` run after another cannot resolve a change
 * of less than about a third in steady's CPU per result: the same build measured 132 µs at 05:14
 * and 215–368 µs between 08:20 and 08:40 on 12-03, as the VM's host moved between phases
 * (docs/PERFORMANCE.md, "Comparing two builds side by side"). Run at once, both services live
 * through the same phase, and what they share (the two cores, the client process) they share
 * evenly, so their ratio holds still where their absolute figures do not.
 *
 * Each round starts a fresh child of each build, opens `--sessions` demo sessions on each from
 * one client process (the bench's Load; their STARTs spread evenly over `--open-spread-ms`,
 * three intervals by default), waits `--warmup-seconds`, then measures both over the
 * same `--seconds` window: server CPU per result (every thread, and the main thread alone),
 * latency, results. The rounds alternate which build starts first. It prints each round and, at
 * the end, the ratio B / A of the CPU per result, round by round and overall, and of the main
 * thread's overall.
 *
 * The main thread's figure is the steadier one: two identical builds differed by about 2 % in it
 * over 45 s windows, against up to 4 % in the whole process's (docs/PERFORMANCE.md, "The main
 * thread by its own clock"). A change to what the main thread does is read from it; a
 * `--cpu-prof` of a thread idle 98 % of the time does not resolve a path of a few µs. Its clock
 * ticks every 10 ms: give it windows of 30 s or more (`--seconds 60 --rounds 2`).
 *
 *   node dist/bench/side-by-side.js --b /path/to/other/checkout      # this build (A) against another, built (B)
 *   node dist/bench/side-by-side.js --b-env STEP_TIMER_TICK_MS=10     # one build, two configurations
 *   node dist/bench/side-by-side.js --b-kind bare-ws --b-env BARE_WS_HANDOFF=2   # tandem beside the steady-handoff floor
 *   node dist/bench/side-by-side.js --a-kind bare-ws --a-env BARE_WS_HANDOFF=2 --b-kind bare-ws --b-env BARE_WS_HANDOFF=2,BARE_WS_HANDOFF_TIMER=worker
 *   node dist/bench/side-by-side.js [--a DIR] [--a-env K=V,...] [--a-kind tandem|bare-ws] [--b …] [--b-env …] [--b-kind …]
 *        [--sessions 1000] [--interval-ms 1500] [--warmup-seconds 8] [--seconds 10] [--rounds 4] [--open-spread-ms 4500]
 *        [--data-dir data/bench]
 *
 * A checkout given as --a or --b must be installed and built (`npm ci && npm run build`, or its
 * node_modules a link to this one's): its child runs its own code and resolves its own packages.
 * It is a developer's tool, not a scenario of `npm run bench`: the targets are read from
 * `npm run bench`, one build alone on the machine.
 * Bounded: every round's children are closed and their data removed before the next begins.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { childScriptIn, envPairs, startFreshChild, type BenchChild, type ChildKind } from './child.js';
import { Load, steadySpreadMs } from './load.js';
import { sampleProcess, threadCpuMs } from './proc.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    'a-env': { type: 'string', default: '' },
    'b-env': { type: 'string', default: '' },
    'a-kind': { type: 'string', default: 'tandem' },
    'b-kind': { type: 'string', default: 'tandem' },
    sessions: { type: 'string', default: '1000' },
    'interval-ms': { type: 'string', default: '1500' },
    'warmup-seconds': { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '4' },
    /** STARTs sent evenly over this long, ms (default three intervals): see STEADY_OPEN_SPREAD_INTERVALS. */
    'open-spread-ms': { type: 'string' },
    'data-dir': { type: 'string', default: 'data/bench' },
  },
});

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

function kindOf(name: string, v: string | undefined): ChildKind {
  if (v === 'tandem' || v === 'bare-ws') return v;
  throw new Error(`--${name} is tandem or bare-ws, got ${v}`);
}

interface Build {
  label: 'A' | 'B';
  /** tandem, or the bench's bare \`ws\` server (with BARE_WS_HANDOFF=2 in its env: the steady-handoff floor). */
  kind: ChildKind;
  /** The checkout it runs from (undefined: this one). */
  root: string | undefined;
  env: Record<string, string>;
}

const builds: Build[] = [
  { label: 'A', kind: kindOf('a-kind', values['a-kind']), root: values.a ? path.resolve(values.a) : undefined, env: envPairs(values['a-env']!.split(',').filter(Boolean), '--a-env') },
  { label: 'B', kind: kindOf('b-kind', values['b-kind']), root: values.b ? path.resolve(values.b) : undefined, env: envPairs(values['b-env']!.split(',').filter(Boolean), '--b-env') },
];
const sessions = positive('sessions', values.sessions);
const intervalMs = positive('interval-ms', values['interval-ms']);
const warmupSeconds = positive('warmup-seconds', values['warmup-seconds']);
const seconds = positive('seconds', values.seconds);
const rounds = positive('rounds', values.rounds);
const openSpreadMs = steadySpreadMs(intervalMs, values['open-spread-ms']);
const dataRoot = path.resolve(values['data-dir']!);
const start = { url: 'demo://bench', pipeline: 'demo', options: { intervalMs } };

interface Measured {
  cpuUsPerResult: number;
  /** The main thread's alone (its thread id is the process's). */
  mainUsPerResult: number;
  resultsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  gaps: number;
}

interface Running {
  build: Build;
  child: BenchChild;
  load: Load;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function round(order: Build[]): Promise<Map<Build, Measured>> {
  const running: Running[] = [];
  try {
    for (const build of order) {
      const child = await startFreshChild(build.kind, {
        dataRoot,
        sessions,
        env: build.env,
        execArgv: [],
        ...(build.root ? { script: childScriptIn(build.root, build.kind) } : {}),
      });
      running.push({ build, child, load: new Load({ url: child.wsUrl('/ws'), sessions, start, openSpreadMs }) });
    }
    await Promise.all(running.map((r) => r.load.open()));
    await sleep(warmupSeconds * 1000);
    const before = running.map((r) => sampleProcess(r.child.pid)!);
    const mainBefore = running.map((r) => mainThreadCpuMs(r.child.pid));
    for (const r of running) r.load.startRecording();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    for (const r of running) r.load.stopRecording();
    const windowSeconds = (performance.now() - t0) / 1000;
    const after = running.map((r) => sampleProcess(r.child.pid)!);
    const mainAfter = running.map((r) => mainThreadCpuMs(r.child.pid));
    const out = new Map<Build, Measured>();
    running.forEach((r, i) => {
      const results = r.load.received;
      const h = r.load.latencyUs;
      out.set(r.build, {
        cpuUsPerResult: results > 0 ? ((after[i]!.cpuMs - before[i]!.cpuMs) * 1000) / results : NaN,
        mainUsPerResult: results > 0 ? ((mainAfter[i]! - mainBefore[i]!) * 1000) / results : NaN,
        resultsPerSecond: results / windowSeconds,
        p50Ms: h.percentile(50) / 1000,
        p99Ms: h.percentile(99) / 1000,
        gaps: r.load.gaps + r.load.reorders + r.load.duplicates,
      });
    });
    return out;
  } finally {
    for (const r of running) r.load.terminate();
    await Promise.all(running.map((r) => r.child.close()));
  }
}

/** The CPU time so far of `pid`'s main thread, ms (NaN once it is gone). */
function mainThreadCpuMs(pid: number): number {
  return threadCpuMs(pid).get(pid) ?? NaN;
}

const describe = (b: Build) =>
  `${b.label}: ${b.kind === 'tandem' ? '' : 'the bare ws server of '}${b.root ?? 'this checkout'}${Object.keys(b.env).length > 0 ? ` with ${Object.entries(b.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`;
console.log(`side by side, ${rounds} rounds of ${sessions} demo sessions × 1 result / ${intervalMs} ms on each, ${seconds} s windows after ${warmupSeconds} s`);
for (const b of builds) console.log(`  ${describe(b)}`);
const ratios: number[] = [];
const totals = new Map<Build, { cpuUs: number; mainUs: number; results: number }>(builds.map((b) => [b, { cpuUs: 0, mainUs: 0, results: 0 }]));
let streamErrors = 0;
for (let i = 0; i < rounds; i++) {
  const order = i % 2 === 0 ? builds : [...builds].reverse();
  const m = await round(order);
  const [a, b] = builds.map((x) => m.get(x)!);
  const ratio = b!.cpuUsPerResult / a!.cpuUsPerResult;
  ratios.push(ratio);
  for (const x of builds) {
    const r = m.get(x)!;
    const t = totals.get(x)!;
    t.cpuUs += r.cpuUsPerResult * r.resultsPerSecond;
    t.mainUs += r.mainUsPerResult * r.resultsPerSecond;
    t.results += r.resultsPerSecond;
    streamErrors += r.gaps;
  }
  const cell = (r: Measured) =>
    `${r.cpuUsPerResult.toFixed(1)} µs/result (main thread ${r.mainUsPerResult.toFixed(1)}), ${r.resultsPerSecond.toFixed(0)}/s, p50/p99 ${r.p50Ms.toFixed(2)}/${r.p99Ms.toFixed(2)} ms`;
  console.log(`round ${i + 1} (${order[0]!.label} first): A ${cell(a!)} | B ${cell(b!)} | B/A ${ratio.toFixed(3)}`);
}
const overall = builds.map((b) => totals.get(b)!.cpuUs / totals.get(b)!.results);
const overallMain = builds.map((b) => totals.get(b)!.mainUs / totals.get(b)!.results);
const sorted = [...ratios].sort((x, y) => x - y);
console.log(
  `overall: A ${overall[0]!.toFixed(1)} µs/result, B ${overall[1]!.toFixed(1)}; B/A ${(overall[1]! / overall[0]!).toFixed(3)} (rounds from ${sorted[0]!.toFixed(3)} to ${sorted[sorted.length - 1]!.toFixed(3)})`,
);
console.log(`main thread: A ${overallMain[0]!.toFixed(1)} µs/result, B ${overallMain[1]!.toFixed(1)}; B/A ${(overallMain[1]! / overallMain[0]!).toFixed(3)}`);
if (streamErrors > 0) {
  console.log(`${streamErrors} gaps, reorders or duplicates in the streams`);
  process.exitCode = 1;
}
