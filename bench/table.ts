/**
 * The bench's tables, as Markdown (readable in a terminal too): a row per load scenario with the
 * ceiling's results/s as the yardstick, the resume scenario, the targets against the floors of
 * the same run, and the file-system floors.
 */
import type { FsFloor } from './fs-cost.js';
import type { ResumeResult } from './resume.js';
import type { Percentiles, Row } from './scenario.js';
import { round, type TargetCheck } from './targets.js';
import { FOUR_WARMUP_SECONDS, type Spread, type TranscribeResult } from './transcribe.js';
import type { WakeCost } from './wake-cost.js';

const fixed = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '∞');
const trio = (p: Percentiles | null, digits = 1) => (p ? `${fixed(p.p50, digits)} / ${fixed(p.p99, digits)} / ${fixed(p.max, digits)}` : '–');
const count = (v: number) => Math.round(v).toLocaleString('en-US');

function markdown(header: string[], lines: string[][]): string {
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

/** The load scenarios, tandem's and the bare ws floors', one row each. */
export function renderTable(rows: Row[]): string {
  const ceiling = rows.find((r) => r.key === 'ceiling');
  const header = [
    'scenario',
    'server',
    'sessions',
    'results/s',
    '% of offered',
    '% of ceiling',
    'latency p50 / p99 / max (ms)',
    'gaps',
    'reorders',
    'dups',
    'RSS base → peak (MiB)',
    'RSS / session (KiB)',
    'threads idle → peak',
    'loop lag p99 (ms)',
    'STOP→stopped p50 / p99 (ms)',
    'STOP→close p50 / p99 / max (ms)',
    '>100 ms',
    'server CPU µs / STOP',
    'server CPU',
    'server CPU µs / result',
    'client CPU',
  ];
  const lines = rows.map((r) => [
    r.name,
    r.kind,
    String(r.sessions),
    r.windowSeconds > 0 ? count(r.resultsPerSecond) : '–',
    r.offeredPerSecond && r.windowSeconds > 0 ? `${fixed((100 * r.resultsPerSecond) / r.offeredPerSecond)}%` : '–',
    ceiling && r !== ceiling && r.offeredPerSecond === null && r.windowSeconds > 0 ? `${fixed((100 * r.resultsPerSecond) / ceiling.resultsPerSecond)}%` : '–',
    trio(r.latencyMs, 2),
    String(r.gaps),
    String(r.reorders),
    String(r.duplicates),
    `${fixed(r.rssBaseMiB)} → ${fixed(r.rssPeakMiB)}`,
    r.windowSeconds > 0 ? fixed(r.rssPerSessionKiB) : '–',
    `${r.threadsBase} → ${r.threadsPeak}`,
    fixed(r.eventLoopP99Ms),
    r.stopStoppedMs ? `${fixed(r.stopStoppedMs.p50)} / ${fixed(r.stopStoppedMs.p99)}` : '–',
    trio(r.stopCloseMs),
    String(r.stopsOver100Ms),
    r.stopCpuUsPerStop !== null ? String(Math.round(r.stopCpuUsPerStop)) : '–',
    r.windowSeconds > 0 ? `${Math.round(r.serverCpuPercent)}%` : '–',
    r.resultsPerSecond > 0 ? String(Math.round((r.serverCpuPercent * 10_000) / r.resultsPerSecond)) : '–',
    r.windowSeconds > 0 ? `${Math.round(r.clientCpuPercent)}%` : '–',
  ]);
  return markdown(header, lines);
}

/** The resume scenario: what came back after a stalled, dropped link. */
export function renderResume(r: ResumeResult): string {
  return markdown(
    ['scenario', 'RESUME answered', 'results before drop', 'resumed after seq', 'results after drop', 'gaps', 'dups', 'reorders', 'RESUME → first result (ms)', 'results/s after'],
    [
      [
        r.name,
        r.message ? `${r.answer}: ${r.message}` : r.answer,
        count(r.resultsBeforeDrop),
        String(r.resumedAfter),
        count(r.resultsAfterDrop),
        String(r.gaps),
        String(r.duplicates),
        String(r.reorders),
        r.firstResultMs === null ? '–' : fixed(r.firstResultMs),
        r.resultsPerSecondAfter > 0 ? count(r.resultsPerSecondAfter) : '–',
      ],
    ],
  );
}

/** The transcribe scenario: each part, what it ran, and what it measured (ms unless said). */
export function renderTranscribe(r: TranscribeResult): string {
  const ms = (v: Spread | null) => (v ? `p50 ${fixed(v.p50)} / p95 ${fixed(v.p95)} / max ${fixed(v.max)}` : '–');
  const mb = (bytes: number) => fixed(bytes / 1e6);
  const lines: string[][] = [];
  const { fast, realtime, four, churn } = r;
  if (fast) {
    lines.push([
      'fast',
      `1 session, pace fast, chunkMs ${fast.chunkMs}, ${fixed(fast.audioSeconds)} s of flite speech`,
      `START → stopped ${fixed(fast.wallSeconds, 2)} s = ${fixed(fast.wallSeconds / fast.audioSeconds, 3)} × the audio (model load included); ` +
        `START → first result ${fixed(fast.firstResultMs)} ms; first → last result ${fixed(fast.ratioWithoutLoad, 3)} × (decoding alone); ` +
        `server CPU ${fixed(fast.serverCpuSeconds, 2)} s, of which the busiest thread (the decoder's) ${fast.decoderThreadCpuSeconds === null ? '–' : `${fixed(fast.decoderThreadCpuSeconds, 2)} s`}; ${fast.finals} finals, ${fast.words} words`,
    ]);
  }
  if (r.floor) {
    const f = r.floor;
    lines.push([
      'floor',
      `pocketsphinx_continuous -infile, the fast session's ${fixed(f.audioSeconds)} s file, no service`,
      `${fixed(f.wallSeconds, 2)} s = ${fixed(f.wallSeconds / f.audioSeconds, 3)} × the audio (model load included); CPU ${fixed(f.cpuSeconds, 2)} s`,
    ]);
  }
  if (realtime) {
    const sv = realtime.serverLatencyMs;
    lines.push([
      'realtime',
      `1 session, pace realtime, chunkMs ${realtime.chunkMs}, ${fixed(realtime.audioSeconds)} s`,
      `written → sent (service, its recent window of ${sv.samples} measured) p50 ${sv.p50 === null ? '–' : fixed(sv.p50)} / p95 ${sv.p95 === null ? '–' : fixed(sv.p95)} / max ${sv.max === null ? '–' : fixed(sv.max)}; ` +
        `written → received (client) ${ms(realtime.clientLatencyMs)}, of results carrying a final ${ms(realtime.clientLatencyWithFinalMs)}; final after its last word ${ms(realtime.finalAfterWordEndMs)} over ${realtime.finals} finals`,
    ]);
  }
  if (four) {
    lines.push([
      'four',
      `${four.sessions} sessions, pace realtime, chunkMs ${four.chunkMs}, started ${four.staggerMs} ms apart, ${four.seconds} s after a ${FOUR_WARMUP_SECONDS} s warm-up`,
      `lag (chunks written − consumed) ${four.lag ? `p50 ${four.lag.p50} / p95 ${four.lag.p95} / max ${four.lag.max}` : '–'} over ${four.samples} samples; ` +
        `start-up lag max ${four.startupLagMax ?? '–'} (START → first result up to ${fixed(four.firstResultMsMax)}); ` +
        `${count(four.results)} results; worst written → sent p95 ${four.latencyP95Ms === null ? '–' : fixed(four.latencyP95Ms)}`,
    ]);
  }
  if (churn) {
    lines.push([
      'churn',
      `${churn.rounds} STARTs and STOPs mid-utterance, 4 at a time, WAV and FLAC (sox) alternating`,
      `RSS cold ${mb(churn.rssColdBytes)} MB, before ${mb(churn.rssBeforeBytes)} MB (after 1 warm-up round), after ${mb(churn.rssAfterBytes)} MB` +
        (churn.collected ? ` (each after a memory-reducing GC; just before it ${mb(churn.rssBeforeUncollectedBytes)} → ${mb(churn.rssAfterUncollectedBytes)} MB)` : ' (no GC: the child lacked --expose-gc)') +
        '; ' +
        `threads ${churn.threadsBefore} → ${churn.threadsAfter}; children left ${churn.childrenLeft.length}; forced ${churn.forced}; ${churn.roundsWithSox} STOPs while sox ran`,
    ]);
  }
  for (const f of r.failures) lines.push(['failed', '', f]);
  return markdown(['transcribe', 'what ran', 'figures'], lines);
}

/** Each target with tandem's figure, the bare ws floor's of the same run, and the verdict. */
export function renderTargets(checks: TargetCheck[]): string {
  const figure = (v: number | null, unit: string) => (v === null ? '–' : `${round(v)}${unit ? ` ${unit}` : ''}`);
  return markdown(
    ['scenario', 'figure', 'target', 'tandem', 'bare ws, same run', 'verdict', 'note'],
    checks.map((c) => [c.scenario, c.figure, c.limit, figure(c.value, c.unit), figure(c.floorValue, c.unit), c.verdict, c.note]),
  );
}

/** The file-system floors on one folder. */
export function renderFsFloor(f: FsFloor): string {
  const cost = (c: { cpuUs: number; wallUs: number }) => [fixed(c.cpuUs), fixed(c.wallUs), count(1e6 / c.cpuUs)];
  const lines = [
    ['a file per chunk (create+write+close, rename, read, unlink)', String(f.chunk.chunks), ...cost(f.chunk.perChunk)],
    ...Object.entries(f.chunk.calls).map(([call, c]) => [`  ${call} (timed alone)`, '', ...cost(c)]),
    ...f.records.map((r) => [
      r.op === 'read'
        ? `  read back, ${r.batch} per read (crc32 checked, decoded)`
        : `${f.recordBytes}-byte record appended, ${r.batch} per write${r.op === 'append+fdatasync' ? ' + fdatasync' : ''}`,
      count(r.records),
      ...cost(r.perRecord),
    ]),
  ];
  const title = `File-system floor on ${f.dir} (${f.fsType}), ${f.sessions} sessions round-robin, one thread:`;
  const removal = [
    ['recursive rm (fs.rmSync, as before 12-05)', ...cost(f.removal.recursive)],
    ['readdir, an unlink per file, one rmdir (the service: removeSpoolSync)', ...cost(f.removal.flat)],
  ];
  return [
    `${title}\n${markdown(['a chunk spooled as', 'count', 'CPU µs / chunk', 'wall µs / chunk', 'chunks/s per core (CPU)'], lines)}`,
    `A stopped session's spool folder (two segment files) removed, ${count(f.removal.spools)} folders each way:`,
    markdown(['removed by', 'CPU µs / folder', 'wall µs / folder', 'folders/s per core (CPU)'], removal),
  ].join('\n');
}

/** The wake-up floor: CPU per firing by the gap slept, for an empty timer and for a timer with a round trip to a thread. */
export function renderWakeFloor(w: WakeCost[]): string {
  const gaps = [...new Set(w.map((c) => c.gapMs))].sort((a, b) => a - b);
  const at = (shape: WakeCost['shape'], gap: number) => w.find((c) => c.shape === shape && c.gapMs === gap);
  const cell = (c: WakeCost | undefined) => (c ? `${fixed(c.cpuUsPerFiring)} (${count(c.firings)} firings)` : '–');
  const lines = gaps.map((g) => [`${g} ms`, cell(at('timer', g)), cell(at('hop', g))]);
  const title = 'Wake-up floor: CPU of the whole process per firing, µs, nothing else running in it (bench/wake-cost.ts):';
  return `${title}\n${markdown(['gap slept', 'an empty timer (one thread)', 'a timer and an empty round trip to a worker thread'], lines)}`;
}
