/**
 * The CPU a delivered result costs the service's own machinery, without sockets or a client:
 * steady's load (1,000 demo sessions, one result each every 1.5 s) started through the real
 * registry of a real `createApp`, evenly over three intervals as the bench's steady scenarios
 * start theirs (bench/load.ts), each session's sink taking its results as a connection does
 * (building the `transcript` frame's text) but sending nothing. It prints, over a window after a
 * warm-up, per result: the process's CPU (every thread), each thread's, what the main thread
 * allocated, and how long a result took from its chunk's `ctx.write` to the sink (the server's
 * part of the latency the bench's client measures, before the socket). What it leaves out is
 * what the bare `ws` floor pays too (the socket writes) and the client's share of the machine's
 * two cores. The CPU figures still move with the machine's load
 * (compare two builds in alternating runs); the bytes allocated do not, so they show a change on
 * the main thread's path even when its CPU cannot:
 *
 *   node dist/bench/session-cost.js [--sessions 1000] [--interval-ms 1500] [--seconds 10] [--warmup-seconds 30] [--start-spread-ms 4500]
 *                                   [--alloc-profile FILE.heapprofile [--survivors]] [--cpu-profile FILE.cpuprofile]
 *
 * It is a developer's tool, not a scenario of `npm run bench`: it reaches into the service's
 * modules, so it moves with them. DATA_DIR and the rest come from the environment, as for `npm start`.
 */
import fs from 'node:fs';
import { createHistogram, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { Session as InspectorSession } from 'node:inspector/promises';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { Session, SessionSink } from '../src/sessions/session.js';
import { transcriptMessage } from '../src/ws/protocol.js';
import { nowMs } from '../src/pool/flags.js';
import { cpuUsByThread, threadCpuMs } from './proc.js';
import { evenTurn, steadySpreadMs } from './load.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    'interval-ms': { type: 'string', default: '1500' },
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '30' },
    /** The sessions start evenly over this long, ms (default: three intervals, as the bench's steady scenarios; 0: at once). */
    'start-spread-ms': { type: 'string' },
    /** Writes the main thread's allocations over the window (sampled, collected ones included) as a .heapprofile. */
    'alloc-profile': { type: 'string' },
    /**
     * With --alloc-profile: leave out what a young-generation collection freed, keeping mostly
     * what outlived one (what the main thread's scavenges copied and promoted); objects still
     * young when the window ends are in it too.
     */
    survivors: { type: 'boolean', default: false },
    /** Writes the main thread's CPU profile over the window (sampled every 50 µs) as a .cpuprofile. */
    'cpu-profile': { type: 'string' },
  },
});
const sessionCount = Number(values.sessions);
const seconds = Number(values.seconds);

const config = loadConfig({ MAX_SESSIONS_PER_CLIENT: '0', MAX_SESSIONS: String(sessionCount + 16), DATA_DIR: 'data/session-cost', LOG_LEVEL: 'warn', ...process.env });
const app = await createApp({ config, logger: createLogger(config.logLevel) });
await app.listen(0, '127.0.0.1');

let delivered = 0;
let frameChars = 0;
/** µs from a chunk's production to its result reaching the sink, over the window only. */
const toSinkUs = createHistogram();
let measuring = false;
let failures = 0;
const sink: SessionSink = {
  result(session: Session, r) {
    delivered++;
    frameChars += transcriptMessage(session.id, r.seq, r.json, r.producedAt).length;
    if (measuring) toSinkUs.record(Math.max(1, Math.round((nowMs() - r.producedAt) * 1000)));
  },
  writable: () => true,
  failed(_session, error) {
    failures++;
    if (failures <= 3) console.error(`session failed: ${error.message}`);
  },
  ended() {},
};

const intervalMs = Number(values['interval-ms']);
const startSpreadMs = steadySpreadMs(intervalMs, values['start-spread-ms'], '--start-spread-ms');
const started: Session[] = [];
const t0 = performance.now();
for (let i = 0; i < sessionCount; i++) {
  await evenTurn(t0, i, sessionCount, startSpreadMs);
  started.push(
    await app.sessions.start({ pipeline: 'demo', url: `demo://session-cost/${i}`, options: { intervalMs }, keep: false, clientAddress: null, sink }),
  );
}
await new Promise((r) => setTimeout(r, Number(values['warmup-seconds']) * 1000));

const inspector = values['alloc-profile'] || values['cpu-profile'] ? new InspectorSession() : null;
if (inspector) inspector.connect();
if (inspector && values['alloc-profile']) {
  await inspector.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !values.survivors });
}
if (inspector && values['cpu-profile']) {
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 50 });
  await inspector.post('Profiler.start');
}
const tasks0 = app.pool.stats().completed;
const cpu0 = process.cpuUsage();
const threads0 = threadCpuMs(process.pid);
// What the main thread allocates: the heap's growth between collections, summed.
const gcProfiler = new v8.GCProfiler();
gcProfiler.start();
const used0 = v8.getHeapStatistics().used_heap_size;
const d0 = delivered;
measuring = true;
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const cpu = process.cpuUsage(cpu0);
const threads1 = threadCpuMs(process.pid);
const n = delivered - d0;
const tasks = app.pool.stats().completed - tasks0;
if (inspector && values['alloc-profile']) {
  const { profile } = await inspector.post('HeapProfiler.stopSampling');
  fs.writeFileSync(values['alloc-profile'], JSON.stringify(profile));
}
if (inspector && values['cpu-profile']) {
  const { profile } = await inspector.post('Profiler.stop');
  fs.writeFileSync(values['cpu-profile'], JSON.stringify(profile));
}
inspector?.disconnect();
const used1 = v8.getHeapStatistics().used_heap_size;
let allocated = 0;
let before = used0;
for (const gc of gcProfiler.stop()?.statistics ?? []) {
  allocated += gc.beforeGC.heapStatistics.usedHeapSize - before;
  before = gc.afterGC.heapStatistics.usedHeapSize;
}
allocated += used1 - before;
const perThread = cpuUsByThread(threads0, threads1, n);
const mainUs = perThread.find((t) => t.tid === process.pid)?.us ?? 0;

console.log(
  `${n} results in ${seconds} s: ${((cpu.user + cpu.system) / n).toFixed(1)} µs of CPU per result ` +
    `(user ${(cpu.user / n).toFixed(1)}, system ${(cpu.system / n).toFixed(1)}), main thread ${mainUs.toFixed(1)} µs` +
    (failures > 0 ? `; ${failures} sessions failed` : '') +
    (frameChars > 0 ? '' : ' (no frame text built)'),
);
console.log(`  the main thread allocated ${(allocated / n / 1024).toFixed(2)} KiB per result; ${(n / tasks).toFixed(1)} results per pool task`);
const ms = (us: number) => (us / 1000).toFixed(2);
console.log(`  chunk produced → result at the sink, ms: p50 ${ms(toSinkUs.percentile(50))}, p99 ${ms(toSinkUs.percentile(99))}, max ${ms(toSinkUs.max)}`);
console.log(`  µs per result by thread (the main thread first is ${process.pid}): ${perThread.map((t) => `${t.tid} ${t.us.toFixed(1)}`).join(', ')}`);
await Promise.all(started.map((s) => s.stop('shutdown')));
await app.close();
fs.rmSync('data/session-cost', { recursive: true, force: true });
