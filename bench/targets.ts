/**
 * The data path's targets (issue 10, "Targets": 2 cores, in `npm run bench`), each checked
 * against the figure of the same run and, where the bare `ws` server was measured on the same
 * load, against what the transport alone does: a target that is missed is reported with the
 * floor's figure, so "the floor misses it too" is read from the same run, not argued.
 */
import type { ResumeResult } from './resume.js';
import type { Row } from './scenario.js';
import { FOUR_WARMUP_SECONDS, type TranscribeResult } from './transcribe.js';
import { TICK_MS, type WakeCost } from './wake-cost.js';

export type Verdict = 'met' | 'not met' | 'not met, nor by the floor' | 'not measured';

export interface TargetCheck {
  /** Row key of the scenario (`crowd`, `storm`, …). */
  scenario: string;
  figure: string;
  /** The limit as written, e.g. `≤ 10 ms`. */
  limit: string;
  /** The limit's number (null: it could not be set in this run, or it is not a number). */
  limitValue: number | null;
  value: number | null;
  /** The bare `ws` floor's figure in this run (null: none was measured). */
  floorValue: number | null;
  unit: string;
  verdict: Verdict;
  note: string;
}

interface NumberTarget {
  scenario: string;
  /** Row key of the bare `ws` run of the same load, if the issue compares against one. */
  floor?: string;
  figure: string;
  unit: string;
  atMost: boolean;
  /** The limit, from the issue; may depend on the floor (the stop storm's) or on the service (threads). */
  limit: (row: Row, floor: Row | undefined, rows: Row[]) => { value: number; note?: string } | null;
  value: (row: Row, rows: Row[]) => number | null;
  /** Figures of the same run worth reading beside this one, for the note. */
  beside?: (rows: Row[], wake: WakeCost[] | null) => string | null;
}

const fixedLimit = (value: number) => () => ({ value });
const cpuPerResult = (r: Row) => (r.resultsPerSecond > 0 ? (r.serverCpuPercent * 10_000) / r.resultsPerSecond : null);
const deliveredPercent = (r: Row) => (r.offeredPerSecond && r.windowSeconds > 0 ? (100 * r.resultsPerSecond) / r.offeredPerSecond : null);
const byKey = (rows: Row[], key: string | undefined) => (key ? rows.find((r) => r.key === key) : undefined);

/** The bare ws hand-offs read beside steady's CPU per result, and what each is. */
const STEADY_YARDSTICKS = [
  ['steady-handoff', 'a thread hop and two appends per result alone'],
  ['steady-thread', "the same with the thread keeping the schedule and sending, tandem's shape alone"],
  ['steady-log', 'that shape with one log per thread, a tick\'s records in two writes'],
] as const;

/** The issue's list, in its order. */
const TARGETS: NumberTarget[] = [
  {
    scenario: 'saturation',
    figure: "results/s, % of the same run's bare-ws ceiling",
    unit: '%',
    atMost: false,
    limit: (_r, _floor, rows) => (byKey(rows, 'ceiling') ? { value: 50 } : null),
    value: (r, rows) => {
      const ceiling = byKey(rows, 'ceiling');
      return ceiling && ceiling.resultsPerSecond > 0 ? (100 * r.resultsPerSecond) / ceiling.resultsPerSecond : null;
    },
  },
  { scenario: 'saturation', floor: 'ceiling', figure: 'server CPU per result', unit: 'µs', atMost: true, limit: fixedLimit(20), value: cpuPerResult },
  { scenario: 'crowd', floor: 'crowd-floor', figure: 'results delivered, % of offered', unit: '%', atMost: false, limit: fixedLimit(99), value: deliveredPercent },
  { scenario: 'crowd', floor: 'crowd-floor', figure: 'latency p99', unit: 'ms', atMost: true, limit: fixedLimit(10), value: (r) => r.latencyMs?.p99 ?? null },
  { scenario: 'crowd', floor: 'crowd-floor', figure: 'latency max', unit: 'ms', atMost: true, limit: fixedLimit(100), value: (r) => r.latencyMs?.max ?? null },
  { scenario: 'crowd', floor: 'crowd-floor', figure: 'RSS per session', unit: 'KiB', atMost: true, limit: fixedLimit(64), value: (r) => (r.windowSeconds > 0 ? r.rssPerSessionKiB : null) },
  {
    scenario: 'crowd',
    figure: "threads at peak (pool maximum + Node's own)",
    unit: '',
    atMost: true,
    // Node's own: an idle bare ws server's threads in this run (main, libuv's, V8's, …).
    limit: (r, _floor, rows) => {
      const bare = byKey(rows, 'crowd-floor') ?? rows.find((x) => x.kind === 'bare-ws');
      if (!bare || r.poolMaxThreads === null) return null;
      return { value: r.poolMaxThreads + bare.threadsBase, note: `${r.poolMaxThreads} + ${bare.threadsBase} (an idle bare ws server's, this run)` };
    },
    value: (r) => r.threadsPeak,
  },
  { scenario: 'steady', floor: 'steady-floor', figure: 'latency p50', unit: 'ms', atMost: true, limit: fixedLimit(1), value: (r) => r.latencyMs?.p50 ?? null },
  { scenario: 'steady', floor: 'steady-floor', figure: 'latency p99', unit: 'ms', atMost: true, limit: fixedLimit(5), value: (r) => r.latencyMs?.p99 ?? null },
  {
    scenario: 'steady',
    floor: 'steady-floor',
    figure: 'server CPU per result',
    unit: 'µs',
    atMost: true,
    limit: fixedLimit(60),
    value: cpuPerResult,
    beside: (rows, wake) => {
      const notes: string[] = [];
      for (const [key, what] of STEADY_YARDSTICKS) {
        const yardstick = byKey(rows, key);
        const us = yardstick ? cpuPerResult(yardstick) : null;
        if (us !== null) notes.push(`${what} (${key}): ${round(us)} µs`);
      }
      // What a tick (STEP_TIMER_TICK_MS's default) costs before any work (wake-floor), shared by the results that fall due in it.
      const tick = wake?.find((c) => c.shape === 'hop' && c.gapMs === TICK_MS);
      const steady = byKey(rows, 'steady');
      if (tick && steady && steady.resultsPerSecond > 0) {
        const perTick = (steady.resultsPerSecond * TICK_MS) / 1000;
        notes.push(
          `an empty ${TICK_MS} ms tick (STEP_TIMER_TICK_MS's default) with a round trip to a thread (wake-floor): ${round(tick.cpuUsPerFiring)} µs, ${round(tick.cpuUsPerFiring / Math.max(1, perTick))} µs per result at ${round(perTick)} results a tick`,
        );
      }
      return notes.length > 0 ? notes.join('; ') : null;
    },
  },
  {
    scenario: 'storm',
    floor: 'storm-floor',
    figure: 'STOP → close p99',
    unit: 'ms',
    atMost: true,
    // ≤ 100 ms, or ≤ 1.25 × the bare ws floor of the same storm where that floor is above 100 ms.
    limit: (_r, floor) => {
      const f = floor?.stopCloseMs?.p99;
      if (f === undefined || !(f > 100)) return { value: 100 };
      return { value: 1.25 * f, note: `1.25 × the floor's ${f.toFixed(1)} ms (above 100 ms)` };
    },
    value: (r) => r.stopCloseMs?.p99 ?? null,
    beside: (rows) => {
      const cold = byKey(rows, 'storm')?.coldStopCloseMs?.p99;
      const coldFloor = byKey(rows, 'storm-floor')?.coldStopCloseMs?.p99;
      if (cold === undefined) return null;
      return `the warm-up storm before it, each server's first (cold): ${cold.toFixed(1)} ms, the floor's ${coldFloor === undefined ? '–' : coldFloor.toFixed(1) + ' ms'}`;
    },
  },
];

function checkNumber(t: NumberTarget, rows: Row[], wake: WakeCost[] | null): TargetCheck | null {
  const row = byKey(rows, t.scenario);
  if (!row) return null;
  const floor = byKey(rows, t.floor);
  const limit = t.limit(row, floor, rows);
  const value = t.value(row, rows);
  const floorValue = floor ? t.value(floor, rows) : null;
  const passes = (v: number) => (t.atMost ? v <= limit!.value : v >= limit!.value);
  const limitText = limit ? `${t.atMost ? '≤' : '≥'} ${round(limit.value)}${t.unit ? ` ${t.unit}` : ''}` : '–';
  const notes: string[] = [];
  if (limit?.note) notes.push(limit.note);
  let verdict: Verdict;
  if (limit === null || value === null) {
    verdict = 'not measured';
    notes.push(limit === null ? 'it needs a scenario this run did not measure' : 'no figure in this run');
  } else if (passes(value)) verdict = 'met';
  else if (floorValue !== null && !passes(floorValue)) verdict = 'not met, nor by the floor';
  else verdict = 'not met';
  if (t.floor && !floor) notes.push(`no ${t.floor} in this run`);
  const beside = t.beside?.(rows, wake);
  if (beside) notes.push(beside);
  return { scenario: t.scenario, figure: t.figure, limit: limitText, limitValue: limit?.value ?? null, value, floorValue, unit: t.unit, verdict, note: notes.join('; ') };
}

function checkResume(r: ResumeResult): TargetCheck[] {
  const resumed = r.answer === 'resumed';
  const count = (figure: string, value: number): TargetCheck => ({
    scenario: r.key,
    figure,
    limit: '= 0',
    limitValue: 0,
    value: resumed ? value : null,
    floorValue: null,
    unit: '',
    verdict: !resumed ? 'not met' : value === 0 ? 'met' : 'not met',
    note: resumed ? '' : `RESUME was answered ${r.answer}`,
  });
  return [
    {
      scenario: r.key,
      figure: 'RESUME answered `resumed`, results follow',
      limit: 'resumed',
      limitValue: null,
      value: r.resultsAfterDrop,
      floorValue: null,
      unit: 'results',
      verdict: resumed && r.resultsAfterDrop > 0 ? 'met' : 'not met',
      note: resumed ? '' : `${r.answer}${r.message ? `: ${r.message}` : ''}`,
    },
    count('gaps', r.gaps),
    count('duplicates', r.duplicates),
  ];
}

const MB = 1_000_000;

/** Issue 11's speed targets (2 cores), one row per figure; a part that failed is `not measured`. */
function checkTranscribe(r: TranscribeResult): TargetCheck[] {
  const row = (figure: string, atMost: number, unit: string, value: number | null | undefined, note: string, floorValue: number | null = null): TargetCheck => ({
    scenario: r.key,
    figure,
    limit: `≤ ${round(atMost)}${unit ? ` ${unit}` : ''}`,
    limitValue: atMost,
    value: value ?? null,
    floorValue,
    unit,
    verdict:
      value === null || value === undefined ? 'not measured' : value <= atMost ? 'met' : floorValue !== null && floorValue > atMost ? 'not met, nor by the floor' : 'not met',
    note: value === null || value === undefined ? 'the part did not run or gave no figure; see the log' : note,
  });
  const { fast, floor, realtime, four, churn } = r;
  const rss = churn ? (churn.rssAfterBytes - churn.rssBeforeBytes) / MB : null;
  return [
    row(
      'pace fast, one session: START → completed, × audio length',
      0.3,
      '',
      fast && fast.wallSeconds / fast.audioSeconds,
      fast
        ? `${round(fast.audioSeconds)} s of audio in ${round(fast.wallSeconds)} s, model load included (START → first result ${round(fast.firstResultMs)} ms); decoding alone ${round(fast.ratioWithoutLoad)} ×; server CPU ${round(fast.serverCpuSeconds / fast.audioSeconds)} s per s of audio` +
          (floor ? `; floor: pocketsphinx_continuous alone on the same file, CPU ${round(floor.cpuSeconds / floor.audioSeconds)} s per s of audio` : '')
        : '',
      floor && floor.wallSeconds / floor.audioSeconds,
    ),
    row(
      `pace realtime, chunkMs ${realtime?.chunkMs ?? ''}: chunk written → result sent p95`,
      150,
      'ms',
      realtime?.serverLatencyMs.p95,
      realtime
        ? `the service's figure (its recent window; ${realtime.serverLatencyMs.samples} results measured); as received by the client p95 ${realtime.clientLatencyMs ? round(realtime.clientLatencyMs.p95) : '–'} ms, ` +
            `max ${realtime.clientLatencyWithFinalMs ? round(realtime.clientLatencyWithFinalMs.max) : '–'} ms for results carrying a final`
        : '',
    ),
    row(
      'pace realtime: final received after its last word ends, max',
      1200,
      'ms',
      realtime?.finalAfterWordEndMs?.max,
      realtime?.finalAfterWordEndMs ? `${realtime.finals} finals, p50 ${round(realtime.finalAfterWordEndMs.p50)} ms; word end = the audio's start + the final's \`end\`` : '',
    ),
    row(
      `${four?.sessions ?? 4} real-time sessions for ${four?.seconds ?? '–'} s: consumer lag (written − consumed), max after warm-up`,
      2,
      'chunks',
      four?.lag?.max,
      four?.lag
        ? `${four.samples} samples every 250 ms after a ${FOUR_WARMUP_SECONDS} s warm-up, p95 ${four.lag.p95}; chunkMs ${four.chunkMs}; ` +
            `start-up (model load, START → first result up to ${round(four.firstResultMsMax)} ms) max ${four.startupLagMax ?? '–'}; worst session's written → sent p95 ${four.latencyP95Ms === null ? '–' : round(four.latencyP95Ms)} ms`
        : '',
    ),
    row(
      `${churn?.rounds ?? 20} STARTs and STOPs mid-utterance: RSS after − before`,
      10,
      'MB',
      rss,
      churn
        ? `${round(churn.rssBeforeBytes / MB)} → ${round(churn.rssAfterBytes / MB)} MB${churn.collected ? ', each after a memory-reducing GC of the main isolate' : ''} (cold, before any session: ${round(churn.rssColdBytes / MB)} MB)` +
            (churn.collected ? `; sampled just before the GC: ${round(churn.rssBeforeUncollectedBytes / MB)} → ${round(churn.rssAfterUncollectedBytes / MB)} MB` : '')
        : '',
    ),
    row(
      'the same: threads, child processes and forced stops left behind',
      0,
      '',
      churn && Math.max(0, churn.threadsAfter - churn.threadsBefore) + churn.childrenLeft.length + churn.forced + churn.notEnded,
      churn
        ? `threads ${churn.threadsBefore} → ${churn.threadsAfter}; children ${churn.childrenLeft.length ? churn.childrenLeft.join(', ') : 'none'}; forced ${churn.forced}, not ended ${churn.notEnded}; ${churn.roundsWithSox} STOPs while sox ran`
        : '',
    ),
  ];
}

/** Checks every target whose scenario ran. */
export function checkTargets(rows: Row[], resume: ResumeResult | null, transcribe: TranscribeResult | null = null, wake: WakeCost[] | null = null): TargetCheck[] {
  const checks = TARGETS.map((t) => checkNumber(t, rows, wake)).filter((c): c is TargetCheck => c !== null);
  if (resume) checks.push(...checkResume(resume));
  if (transcribe) checks.push(...checkTranscribe(transcribe));
  return checks;
}

export function round(v: number): string {
  if (!Number.isFinite(v)) return '∞';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}
