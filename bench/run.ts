/**
 * `npm run bench`: starts tandem (and a bare ws ceiling) as child processes on 127.0.0.1, drives
 * WebSocket clients of the seed protocol against them, and prints one table. Bounded: every
 * scenario has a size and a window, and a watchdog ends the run if anything hangs.
 *
 *   npm run bench                      # every scenario at full size (~3 minutes)
 *   npm run bench -- --quick           # smaller sizes and windows (~1 minute)
 *   npm run bench -- --scenarios ceiling,saturation --seconds 5
 *   npm run bench -- --profile-dir /tmp/prof   # adds --cpu-prof to each tandem child
 *   npm run bench -- --env POOL_MAX_THREADS=4   # any tandem setting
 *
 * The spool goes under --data-dir (default data/bench, next to the service's default DATA_DIR):
 * on some machines /tmp costs far more per file created than the disk the service runs on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type Row, type ScenarioSpec } from './scenario.js';
import { renderTable } from './table.js';

const ALL = ['ceiling', 'steady', 'saturation', 'crowd', 'storm'] as const;
type ScenarioName = (typeof ALL)[number];

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string', default: ALL.join(',') },
    quick: { type: 'boolean', default: false },
    /** Measurement window of each scenario, s. */
    seconds: { type: 'string' },
    'warmup-seconds': { type: 'string' },
    'ceiling-clients': { type: 'string' },
    'steady-sessions': { type: 'string' },
    'steady-interval-ms': { type: 'string' },
    'saturation-sessions': { type: 'string' },
    'crowd-sessions': { type: 'string' },
    'crowd-interval-ms': { type: 'string' },
    'storm-sessions': { type: 'string' },
    'storm-interval-ms': { type: 'string' },
    /** KEY=VALUE added to tandem's environment (repeatable), e.g. --env POOL_MAX_THREADS=4. */
    env: { type: 'string', multiple: true, default: [] },
    'profile-dir': { type: 'string' },
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
const env = Object.fromEntries(
  values.env.map((kv) => {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`--env takes KEY=VALUE, got ${kv}`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);
const wanted = values.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
for (const w of wanted) if (!ALL.includes(w as ScenarioName)) throw new Error(`unknown scenario ${w}; known: ${ALL.join(', ')}`);

const profileDir = values['profile-dir'] ? path.resolve(values['profile-dir']) : undefined;
const execArgvFor = (name: string) =>
  profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];

const dataRoot = path.resolve(values['data-dir']);
const demo = (intervalMs: number) => ({ url: 'demo://bench', pipeline: 'demo', options: { intervalMs } });
const specs: Record<ScenarioName, ScenarioSpec> = {
  ceiling: {
    name: 'ceiling (bare ws)',
    kind: 'ceiling',
    sessions: num(values['ceiling-clients'], 20, 20),
    start: demo(0),
    warmupSeconds: 1,
    measureSeconds: seconds,
    firstResultTimeoutMs: 0,
    env: {},
    execArgv: [],
    dataRoot,
  },
  steady: {
    name: 'steady',
    kind: 'tandem',
    sessions: num(values['steady-sessions'], 1000, 1000),
    start: demo(num(values['steady-interval-ms'], 1500, 1500)),
    warmupSeconds,
    measureSeconds: seconds,
    firstResultTimeoutMs: 0,
    env,
    execArgv: execArgvFor('steady'),
    dataRoot,
  },
  saturation: {
    name: 'saturation',
    kind: 'tandem',
    sessions: num(values['saturation-sessions'], 20, 20),
    start: demo(0),
    warmupSeconds: 1,
    measureSeconds: seconds,
    firstResultTimeoutMs: 0,
    env,
    execArgv: execArgvFor('saturation'),
    dataRoot,
  },
  crowd: {
    name: 'crowd',
    kind: 'tandem',
    sessions: num(values['crowd-sessions'], 10_000, 3000),
    start: demo(num(values['crowd-interval-ms'], 1000, 1000)),
    warmupSeconds,
    measureSeconds: seconds,
    firstResultTimeoutMs: 0,
    env,
    execArgv: execArgvFor('crowd'),
    dataRoot,
  },
  storm: {
    name: 'stop storm',
    kind: 'tandem',
    sessions: num(values['storm-sessions'], 1000, 1000),
    start: demo(num(values['storm-interval-ms'], 1000, 1000)),
    warmupSeconds: 0,
    measureSeconds: 0,
    firstResultTimeoutMs: 10_000,
    env,
    execArgv: execArgvFor('storm'),
    dataRoot,
  },
};

const maxMinutes = Number(values['max-minutes']);
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${maxMinutes} min (--max-minutes); giving up\n`);
  process.exit(1); // children notice the closed IPC channel and exit
}, maxMinutes * 60_000);

const log = (line: string) => process.stderr.write(`${line}\n`);
const cpus = os.cpus();
log(`tandem bench on ${os.availableParallelism()} × ${cpus[0]?.model ?? '?'}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

const rows: Row[] = [];
let failed = false;
for (const name of ALL) {
  if (!wanted.includes(name)) continue;
  const spec = specs[name];
  log(`running ${spec.name}: ${spec.sessions} sessions, START ${JSON.stringify(spec.start)}`);
  try {
    rows.push(await runScenario(spec, log));
  } catch (err) {
    failed = true;
    log(`  ${spec.name} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
clearTimeout(watchdog);

process.stdout.write(`${renderTable(rows)}\n`);
for (const r of rows) {
  if (r.errors.length > 0) log(`${r.name}: errors from the server: ${r.errors.slice(0, 5).join('; ')}`);
  if (r.negativeLatencies > 0) log(`${r.name}: ${r.negativeLatencies} results stamped after receipt (clock skew), counted as 0 ms`);
}
log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), loadavg: os.loadavg(), rows }, null, 2));
process.exit(failed || rows.some((r) => r.gaps > 0 || r.reorders > 0) ? 1 : 0);
