/** The bench's one table: a row per scenario, the ceiling's results/s as the yardstick. */
import type { Percentiles, Row } from './scenario.js';

const fixed = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '∞');
const trio = (p: Percentiles | null, digits = 1) => (p ? `${fixed(p.p50, digits)} / ${fixed(p.p99, digits)} / ${fixed(p.max, digits)}` : '–');

/** Renders rows as a Markdown table (readable in a terminal too). */
export function renderTable(rows: Row[]): string {
  const ceiling = rows.find((r) => r.kind === 'ceiling');
  const header = [
    'scenario',
    'sessions',
    'results/s',
    '% of offered',
    '% of ceiling',
    'latency p50 / p99 / max (ms)',
    'gaps',
    'reorders',
    'RSS base → peak (MiB)',
    'RSS / session (KiB)',
    'threads idle → peak',
    'loop lag p99 (ms)',
    'STOP→stopped p50 / p99 (ms)',
    'STOP→close p50 / p99 / max (ms)',
    '>100 ms',
    'server CPU',
    'server CPU µs / result',
    'client CPU',
  ];
  const lines = rows.map((r) => [
    r.name,
    String(r.sessions),
    r.windowSeconds > 0 ? Math.round(r.resultsPerSecond).toLocaleString('en-US') : '–',
    r.offeredPerSecond && r.windowSeconds > 0 ? `${fixed((100 * r.resultsPerSecond) / r.offeredPerSecond)}%` : '–',
    ceiling && r.kind !== 'ceiling' && r.windowSeconds > 0 ? `${fixed((100 * r.resultsPerSecond) / ceiling.resultsPerSecond)}%` : '–',
    trio(r.latencyMs, 2),
    String(r.gaps),
    String(r.reorders),
    `${fixed(r.rssBaseMiB)} → ${fixed(r.rssPeakMiB)}`,
    r.windowSeconds > 0 ? fixed(r.rssPerSessionKiB) : '–',
    `${r.threadsBase} → ${r.threadsPeak}`,
    fixed(r.eventLoopP99Ms),
    r.stopStoppedMs ? `${fixed(r.stopStoppedMs.p50)} / ${fixed(r.stopStoppedMs.p99)}` : '–',
    trio(r.stopCloseMs),
    String(r.stopsOver100Ms),
    r.windowSeconds > 0 ? `${Math.round(r.serverCpuPercent)}%` : '–',
    r.resultsPerSecond > 0 ? String(Math.round((r.serverCpuPercent * 10_000) / r.resultsPerSecond)) : '–',
    r.windowSeconds > 0 ? `${Math.round(r.clientCpuPercent)}%` : '–',
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}
