/**
 * `npm run bench`: starts tandem (and a bare `ws` server speaking the same protocol) as child
 * processes on 127.0.0.1, drives WebSocket clients against them, and prints the tables
 * docs/PERFORMANCE.md holds: the load scenarios, resume, the targets (tandem against the bare ws
 * floor of the same run) and the file-system floors. Bounded: every scenario has a size and a
 * window, and a watchdog ends the run if anything hangs.
 *
 *   npm run bench                      # every scenario at full size
 *   npm run bench -- --quick           # smaller sizes and windows
 *   npm run bench -- --only resume,crowd-floor --seconds 5
 *   npm run bench -- --only steady --steady-warmup-seconds 3   # steady's window from 3 s, not 30
 *   npm run bench -- --json /tmp/bench.json     # everything printed, as JSON
 *   npm run bench -- --profile-dir /tmp/prof    # adds --cpu-prof to each tandem child
 *   npm run bench -- --only crowd --node-flag=--trace-gc-nvp   # any node flag for each tandem child
 *   npm run bench -- --env POOL_MAX_THREADS=4   # any tandem setting
 *   npm run bench -- --only steady-handoff --env BARE_WS_HANDOFF_TIMER=worker --env BARE_WS_HANDOFF_SEND=worker
 *                                               # a variant of the hand-off floor (bench/handoff.ts)
 *
 * Scenarios (in the order they run; --only / --scenarios picks some):
 *   ceiling      bare ws, 20 clients, frames as fast as each socket drains (saturation's yardstick)
 *   steady-floor bare ws, the steady load: 1,000 sockets × 1 frame / 1.5 s, a timer per socket
 *   steady-handoff bare ws, the same load, each frame made on a worker thread, its chunk and its
 *                result appended to two files before it is sent, on a 5 ms tick (bench/handoff.ts):
 *                a thread hop and tandem's two appends per result with none of its machinery
 *   steady-thread bare ws, the same, but the worker keeps the schedule and writes each frame into
 *                its socket itself: tandem's shape (residents, STEP_SENDS) with none of its machinery
 *   steady-log   bare ws, steady-thread with one log for every socket's records, a tick's chunks in
 *                one write and its results in another: that shape with a log per step thread
 *   steady       tandem, 1,000 demo sessions × 1 result / 1.5 s
 *                (the four steady scenarios measure after --steady-warmup-seconds, 30: warm code)
 *   saturation   tandem, 20 demo sessions at intervalMs 0
 *   crowd-floor  bare ws, the crowd's load: 10,000 sockets × 1 frame/s, a timer per socket
 *   crowd        tandem, 10,000 demo sessions × 1 result/s
 *   storm-floor  bare ws, 1,000 sockets sent STOP at once: `stopped`, then close 1000
 *   storm        tandem, 1,000 demo sessions sent STOP at once
 *                (both measure each server's second storm: a first of --storm-warmup-sessions,
 *                1,000 (0 with --quick), compiles the stop path; its p99 is kept as the cold figure)
 *   resume       tandem, one demo session at intervalMs 0: its link stalls 1 s, dies without a
 *                close frame, and RESUMEs on a new connection 3 s later
 *   fs-floor     the file calls of a chunk, and an appended framed record, on --data-dir
 *   wake-floor   what a wake-up costs with nothing to do: an empty timer, and a timer with an empty
 *                round trip to a worker thread, at gaps of 1, 5 and 20 ms (bench/wake-cost.ts)
 *   transcribe   the real recognizer on flite speech made at bench time (issue 11): one session
 *                at pace fast; one at realtime with --transcribe-chunk-ms chunks (latency, finals);
 *                4 real-time sessions for --transcribe-seconds (60; consumer lag); 20 STARTs and
 *                STOPs mid-utterance (RSS, threads, children left)
 *
 * The spool goes under --data-dir (default data/bench, next to the service's default DATA_DIR):
 * on some machines /tmp costs far more per file created than the disk the service runs on.
 * Exit status 1 when a scenario failed to run or a stream had a gap, reorder or duplicate;
 * targets that are not met are reported in the table, not in the exit status.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FS_FLOOR, measureFsFloor, type FsFloor } from './fs-cost.js';
import { envPairs } from './child.js';
import { steadySpreadMs } from './load.js';
import { handoffEnv, stepTimerEnv } from './handoff.js';
import { runResume, type ResumeResult, type ResumeSpec } from './resume.js';
import { runScenario, type Row, type ScenarioSpec } from './scenario.js';
import { renderFsFloor, renderResume, renderTable, renderTargets, renderTranscribe, renderWakeFloor } from './table.js';
import { checkTargets } from './targets.js';
import { runTranscribe, type TranscribeResult, type TranscribeSpec } from './transcribe.js';
import { measureWakeFloor, type WakeCost } from './wake-cost.js';

const ALL = ['ceiling', 'steady-floor', 'steady-handoff', 'steady-thread', 'steady-log', 'steady', 'saturation', 'crowd-floor', 'crowd', 'storm-floor', 'storm', 'resume', 'fs-floor', 'wake-floor', 'transcribe'] as const;
type ScenarioName = (typeof ALL)[number];

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string' },
    /** The same as --scenarios. */
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    /** Measurement window of each scenario, s. */
    seconds: { type: 'string' },
    'warmup-seconds': { type: 'string' },
    /**
     * Warm-up of the steady scenarios (steady-floor, steady-handoff, steady-thread, steady-log, steady), s: long enough for
     * V8 to have optimised the step path, so the window measures a service in its steady state
     * rather than its first seconds (docs/PERFORMANCE.md, "Steady measured warm").
     */
    'steady-warmup-seconds': { type: 'string' },
    'ceiling-clients': { type: 'string' },
    'steady-sessions': { type: 'string' },
    'steady-interval-ms': { type: 'string' },
    'saturation-sessions': { type: 'string' },
    /** Sessions of the crowd and of its bare ws floor. */
    'crowd-sessions': { type: 'string' },
    'crowd-interval-ms': { type: 'string' },
    /** Sessions of the stop storm and of its bare ws floor. */
    'storm-sessions': { type: 'string' },
    'storm-interval-ms': { type: 'string' },
    /** Sessions of the warm-up storm each storm server gets first (default: --storm-sessions; 0: the measured storm is the first, cold). */
    'storm-warmup-sessions': { type: 'string' },
    'resume-stall-seconds': { type: 'string' },
    'resume-down-seconds': { type: 'string' },
    /** How long results are received after RESUME before STOP, s. */
    'resume-after-seconds': { type: 'string' },
    'fs-chunks': { type: 'string' },
    'fs-records': { type: 'string' },
    /** How long the 4 real-time transcribe sessions run, s (the 60). */
    'transcribe-seconds': { type: 'string' },
    /** Chunk length of the real-time transcribe sessions, ms. */
    'transcribe-chunk-ms': { type: 'string' },
    'transcribe-sessions': { type: 'string' },
    /** Between the STARTs of the 4 real-time sessions, ms (0: their utterances end together). */
    'transcribe-stagger-ms': { type: 'string' },
    /** START/STOP rounds of the transcribe churn. */
    'transcribe-rounds': { type: 'string' },
    /** KEY=VALUE added to tandem's environment (repeatable), e.g. --env POOL_MAX_THREADS=4. */
    env: { type: 'string', multiple: true, default: [] },
    'profile-dir': { type: 'string' },
    /** A node flag added to each tandem child's (repeatable), e.g. --node-flag=--trace-gc-nvp. */
    'node-flag': { type: 'string', multiple: true, default: [] },
    /** Where the service's spool goes: the same disk as the default DATA_DIR (./data), not /tmp. */
    'data-dir': { type: 'string', default: 'data/bench' },
    json: { type: 'string' },
    'max-minutes': { type: 'string', default: '15' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace('/**', '') + '\n');
  process.exit(0);
}

const quick = values.quick;
const num = (v: string | undefined, full: number, small: number) => {
  const n = v === undefined ? (quick ? small : full) : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`bad number ${v}`);
  return n;
};
const seconds = num(values.seconds, 10, 5);
const warmupSeconds = num(values['warmup-seconds'], 3, 2);
const steadyWarmupSeconds = num(values['steady-warmup-seconds'], 30, 5);
const env = envPairs(values.env, '--env');
if (values.only !== undefined && values.scenarios !== undefined) throw new Error('give --only or --scenarios, not both');
const wanted = (values.only ?? values.scenarios ?? ALL.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const w of wanted) if (!ALL.includes(w as ScenarioName)) throw new Error(`unknown scenario ${w}; known: ${ALL.join(', ')}`);

const profileDir = values['profile-dir'] ? path.resolve(values['profile-dir']) : undefined;
const execArgvFor = (name: string) =>
  [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : []), ...values['node-flag']];

const dataRoot = path.resolve(values['data-dir']);
const demo = (intervalMs: number) => ({ url: 'demo://bench', pipeline: 'demo', options: { intervalMs } });
const crowd = { sessions: num(values['crowd-sessions'], 10_000, 3000), start: demo(num(values['crowd-interval-ms'], 1000, 1000)) };
const steadyIntervalMs = num(values['steady-interval-ms'], 1500, 1500);
/** The four steady scenarios send their STARTs evenly over three intervals (bench/load.ts STEADY_OPEN_SPREAD_INTERVALS). */
const steady = {
  sessions: num(values['steady-sessions'], 1000, 1000),
  start: demo(steadyIntervalMs),
  warmupSeconds: steadyWarmupSeconds,
  openSpreadMs: steadySpreadMs(steadyIntervalMs),
};
const stormSessions = num(values['storm-sessions'], 1000, 1000);
const storm = {
  sessions: stormSessions,
  start: demo(num(values['storm-interval-ms'], 1000, 1000)),
  // The measured storm is each server's second: the first, as large, compiles the stop path.
  warmupStormSessions: num(values['storm-warmup-sessions'], stormSessions, 0),
};
/** The hand-off in tandem's shape (bench/handoff.ts): its worker keeps the schedule, appends and sends. */
const threadShapeEnv = { ...stepTimerEnv(env), BARE_WS_HANDOFF: '2', BARE_WS_HANDOFF_TIMER: 'worker', BARE_WS_HANDOFF_SEND: 'worker' };
/** A measured load; the floors run the tandem scenario's load against the bare ws server. */
const load = (key: ScenarioName, name: string, over: Partial<ScenarioSpec>): ScenarioSpec => ({
  key,
  name,
  kind: 'tandem',
  sessions: 0,
  start: demo(0),
  warmupSeconds,
  measureSeconds: seconds,
  firstResultTimeoutMs: 0,
  env,
  execArgv: over.kind === 'bare-ws' ? [] : execArgvFor(key),
  dataRoot,
  ...over,
});
const loads: Partial<Record<ScenarioName, ScenarioSpec>> = {
  ceiling: load('ceiling', 'ceiling (bare ws)', { kind: 'bare-ws', sessions: num(values['ceiling-clients'], 20, 20), warmupSeconds: 1, env: {} }),
  'steady-floor': load('steady-floor', 'steady floor (bare ws)', { kind: 'bare-ws', ...steady, env: {} }),
  // The hand-off gathers its frames on tandem's timer wheel's boundaries: it follows --env's STEP_TIMER_*
  // (and BARE_WS_HANDOFF_TIMER / _SEND choose a variant: bench/handoff.ts).
  'steady-handoff': load('steady-handoff', 'steady, hop + disk (bare ws)', { kind: 'bare-ws', ...steady, env: { ...handoffEnv(env), BARE_WS_HANDOFF: '2' } }),
  // The same hand-off in tandem's own shape: its thread keeps the schedule and sends (--env's variant is ignored).
  'steady-thread': load('steady-thread', 'steady, thread + disk (bare ws)', { kind: 'bare-ws', ...steady, env: threadShapeEnv }),
  // The same shape with a log per thread: the records of a tick share two writes (the "many records can share a write").
  'steady-log': load('steady-log', 'steady, thread + one log (bare ws)', { kind: 'bare-ws', ...steady, env: { ...threadShapeEnv, BARE_WS_HANDOFF_LOG: 'thread' } }),
  steady: load('steady', 'steady', steady),
  saturation: load('saturation', 'saturation', { sessions: num(values['saturation-sessions'], 20, 20), warmupSeconds: 1 }),
  'crowd-floor': load('crowd-floor', 'crowd floor (bare ws)', { kind: 'bare-ws', ...crowd, env: {} }),
  crowd: load('crowd', 'crowd', crowd),
  // --expose-gc: after the warm-up storm, each server collects its garbage before the measured one (bench/scenario.ts warmupStorm).
  'storm-floor': load('storm-floor', 'stop storm floor (bare ws)', { kind: 'bare-ws', ...storm, warmupSeconds: 0, measureSeconds: 0, firstResultTimeoutMs: 10_000, env: {}, execArgv: ['--expose-gc'] }),
  storm: load('storm', 'stop storm', { ...storm, warmupSeconds: 0, measureSeconds: 0, firstResultTimeoutMs: 10_000, execArgv: [...execArgvFor('storm'), '--expose-gc'] }),
};
const resumeSpec: ResumeSpec = {
  key: 'resume',
  name: 'resume',
  start: demo(0),
  warmupSeconds: 1,
  stallSeconds: num(values['resume-stall-seconds'], 1, 1),
  downSeconds: num(values['resume-down-seconds'], 3, 3),
  afterSeconds: num(values['resume-after-seconds'], 3, 2),
  env,
  execArgv: execArgvFor('resume'),
  dataRoot,
};
const transcribeSpec: TranscribeSpec = {
  key: 'transcribe',
  name: 'transcribe',
  chunkMs: num(values['transcribe-chunk-ms'], 100, 100),
  fourSessions: num(values['transcribe-sessions'], 4, 4),
  fourSeconds: num(values['transcribe-seconds'], 60, 10),
  fourStaggerMs: num(values['transcribe-stagger-ms'], 700, 700),
  churnRounds: num(values['transcribe-rounds'], 20, 20),
  env,
  execArgv: execArgvFor('transcribe'),
  dataRoot,
};
const fsFloorOptions = {
  ...DEFAULT_FS_FLOOR,
  chunks: num(values['fs-chunks'], DEFAULT_FS_FLOOR.chunks, 5000),
  records: num(values['fs-records'], DEFAULT_FS_FLOOR.records, 16_384),
};

/** Each wake-floor figure's window, s (one child process per figure, six figures). */
const wakeSeconds = num(undefined, 3, 2);

const maxMinutes = Number(values['max-minutes']);
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${maxMinutes} min (--max-minutes); giving up\n`);
  process.exit(1); // children notice the closed IPC channel and exit
}, maxMinutes * 60_000);

const log = (line: string) => process.stderr.write(`${line}\n`);
const cpus = os.cpus();
const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
log(`tandem bench on ${os.availableParallelism()} × ${cpus[0]?.model ?? '?'}, node ${process.version}, load average ${loadavg()}`);

const rows: Row[] = [];
let resume: ResumeResult | null = null;
let fsFloor: FsFloor | null = null;
let wakeFloor: WakeCost[] | null = null;
let transcribe: TranscribeResult | null = null;
let failed = false;
for (const name of ALL) {
  if (!wanted.includes(name)) continue;
  try {
    if (name === 'resume') {
      log(`running resume: START ${JSON.stringify(resumeSpec.start)}, stall ${resumeSpec.stallSeconds} s, down ${resumeSpec.downSeconds} s`);
      resume = await runResume(resumeSpec, log);
    } else if (name === 'fs-floor') {
      log(`running fs-floor on ${dataRoot}: ${fsFloorOptions.chunks} chunks, ${fsFloorOptions.records} records per batch size`);
      fsFloor = measureFsFloor(dataRoot, fsFloorOptions);
    } else if (name === 'wake-floor') {
      log(`running wake-floor: an empty timer, and one with a round trip to a worker, ${wakeSeconds} s at each gap`);
      wakeFloor = await measureWakeFloor(wakeSeconds);
    } else if (name === 'transcribe') {
      const t = transcribeSpec;
      log(`running transcribe: ${t.fourSessions} real-time sessions for ${t.fourSeconds} s, chunkMs ${t.chunkMs}, ${t.churnRounds} START/STOP rounds`);
      transcribe = await runTranscribe(t, log);
      if (transcribe.failures.length > 0) failed = true;
    } else {
      const spec = loads[name]!;
      log(`running ${spec.name}: ${spec.sessions} sessions, START ${JSON.stringify(spec.start)}`);
      rows.push(await runScenario(spec, log));
    }
  } catch (err) {
    failed = true;
    log(`  ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
clearTimeout(watchdog);

const targets = checkTargets(rows, resume, transcribe, wakeFloor);
const out: string[] = [];
if (rows.length > 0) out.push(renderTable(rows));
if (resume) out.push(renderResume(resume));
if (transcribe) out.push(renderTranscribe(transcribe));
if (targets.length > 0) out.push(renderTargets(targets));
if (fsFloor) out.push(renderFsFloor(fsFloor));
if (wakeFloor) out.push(renderWakeFloor(wakeFloor));
process.stdout.write(`${out.join('\n\n')}\n`);
for (const r of rows) {
  if (r.errors.length > 0) log(`${r.name}: errors from the server: ${r.errors.slice(0, 5).join('; ')}`);
  if (r.negativeLatencies > 0) log(`${r.name}: ${r.negativeLatencies} results stamped after receipt (clock skew), counted as 0 ms`);
}
log(`load average after: ${loadavg()}`);
if (values.json) {
  const report = { at: new Date().toISOString(), argv: process.argv.slice(2), loadavg: os.loadavg(), rows, resume, transcribe, targets, fsFloor, wakeFloor };
  fs.writeFileSync(values.json, JSON.stringify(report, null, 2));
}
const broken = (s: { gaps: number; reorders: number; duplicates: number }) => s.gaps > 0 || s.reorders > 0 || s.duplicates > 0;
process.exit(failed || rows.some(broken) || (resume?.answer === 'resumed' && broken(resume)) ? 1 : 0);
