/**
 * The CPU one step costs on the pool path, without sockets or sessions: demo produce steps, each
 * with its consumer lent (as in `steady`), sent through the real WorkerPool in batches of a few
 * (steady carries about 3 a task at its 5 ms tick) to the real pool worker, which appends each
 * chunk and its result to the session's logs through descriptors held by LogFiles, as the
 * service does; the answers are published as the main thread publishes them. It prints the
 * process's CPU (every thread) per step. The figure moves far less between runs than the
 * scenarios' CPU per result, so it is the one to compare two builds of the pool path with:
 *
 *   node dist/bench/step-cost.js [--steps 24000] [--batch 4] [--sessions 64] [--gap-ms 0] [--data-dir data/bench]
 *
 * With `--gap-ms N` the main thread sleeps N ms (a timer) between batches, as steady's 5 ms tick
 * does, so the threads run each batch on caches that other work (or a halted vCPU's host) had in
 * between; compare with `bench/wake-cost.js hop N`, the same round trip carrying no step.
 *
 * It is a developer's tool, not a scenario of `npm run bench`: it reaches into the service's
 * modules, so it moves with them.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClaimSlab } from '../src/pool/claims.js';
import { FlagsSlab, flagsAt, type SessionFlags } from '../src/pool/flags.js';
import type { ProduceStepResult, ProduceStepTask, TaskSession } from '../src/pool/messages.js';
import { WorkerPool } from '../src/pool/worker-pool.js';
import { HeldFilesBudget } from '../src/spool/held-files.js';
import { LogFiles } from '../src/spool/log-files.js';
import { publishChunks, publishConsumed, publishResults } from '../src/spool/progress.js';
import { cpuUsByThread, threadCpuMs } from './proc.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '24000' },
    batch: { type: 'string', default: '4' },
    sessions: { type: 'string', default: '64' },
    'gap-ms': { type: 'string', default: '0' },
    'data-dir': { type: 'string', default: 'data/bench' },
  },
});
const steps = Number(values.steps);
const perBatch = Number(values.batch);
const sessionCount = Number(values.sessions);
const gapMs = Number(values['gap-ms']);
const gap = () => (gapMs > 0 ? new Promise((r) => setTimeout(r, gapMs)) : null);
const demo = fileURLToPath(new URL('../src/pipelines/builtin/demo.js', import.meta.url));

interface Bench {
  flags: SessionFlags;
  files: LogFiles;
  ref: Pick<ProduceStepTask, 'sessionId' | 'flagsSlot' | 'session'>;
  nextSeq: number;
  state: unknown;
  consumerState: unknown;
}

const flagsSlab = new FlagsSlab(sessionCount + 1);
const claims = new ClaimSlab(8);
const pool = new WorkerPool(
  { minThreads: 1, maxThreads: 1, loopMaxThreads: 1, idleTimeoutMs: 60_000, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 },
  { flagsSlab: flagsSlab.buffer, claimSlab: claims.buffer, batchAnswerUs: 0, stepTickMs: 5 },
  () => {},
);
fs.mkdirSync(values['data-dir'], { recursive: true });
const base = fs.mkdtempSync(path.join(values['data-dir'], 'step-cost-'));
const budget = new HeldFilesBudget({ max: 2 * sessionCount, openFilesLimit: 2 * sessionCount + 1024, reserve: 1024, askPatienceMs: 1000 }, () => 0);
const log = { segmentBytes: 4 * 1024 * 1024, fsync: 'none' as const, fsyncIntervalMs: 200, retainBytes: 64 * 1024 * 1024, retainMs: 120_000, ageRollMinBytes: 64 * 1024 };
const sessions: Bench[] = [];
for (let slot = 1; slot <= sessionCount; slot++) {
  const spoolDir = path.join(base, `s${slot}`);
  fs.mkdirSync(spoolDir);
  const flags = flagsAt(flagsSlab.buffer, slot);
  const files = new LogFiles(spoolDir, flags, budget, ['chunks', 'results'], { idle: () => true, pause: () => {} });
  await files.open();
  const task: TaskSession = {
    module: demo,
    sessionId: `step-cost-${slot}`,
    flagsSlot: slot,
    spoolDir,
    url: 'demo://step-cost',
    input: null,
    options: { intervalMs: 1500 },
    keep: false,
    log,
    spoolQuotaChunks: 1_000_000,
    burstMaxChunks: 256,
    burstMaxMs: 5,
  };
  sessions.push({ flags, files, ref: { sessionId: task.sessionId, flagsSlot: slot, session: v8.serialize(task) }, nextSeq: 1, state: undefined, consumerState: undefined });
}

let next = 0;
async function batch(): Promise<void> {
  const picked = Array.from({ length: perBatch }, () => sessions[next++ % sessions.length]!);
  const entries: ProduceStepTask[] = picked.map((s) => ({
    kind: 'produce-step',
    ...s.ref,
    state: s.state,
    nextSeq: s.nextSeq,
    consumeAfter: true,
    consumerState: s.consumerState,
    roomChunks: 1_000_000,
    roomBytes: 1 << 30,
  }));
  const slot = claims.alloc()!;
  try {
    const answer = await pool.runBatch({ kind: 'step-batch', entries, claimSlot: slot }, () => {}).result;
    answer.outcomes.forEach((outcome, i) => {
      const s = picked[i]!;
      if (!outcome || !('ok' in outcome)) throw new Error(`step ${i} failed: ${JSON.stringify(outcome)}`);
      const r = outcome.ok as ProduceStepResult;
      if (r.error) throw new Error(`step ${i} failed: ${r.error.message}`);
      s.state = r.state;
      s.nextSeq += r.chunks.length;
      if (r.chunkLog) publishChunks(s.flags, r.chunkLog);
      const c = r.consumed;
      if (!c || c.results.length !== r.chunks.length) throw new Error(`step ${i}: ${r.chunks.length} chunks, ${c?.results.length} results`);
      s.consumerState = c.state;
      if (c.resultLog) publishResults(s.flags, c.resultLog);
      if (c.readMark) publishConsumed(s.flags, c.readMark);
    });
  } finally {
    claims.free(slot);
  }
}

try {
  for (let i = 0; i < 1000; i++) {
    await batch(); // warm-up: JIT, the thread, the files
    await gap();
  }
  const batches = Math.ceil(steps / perBatch);
  const cpu = process.cpuUsage();
  const threads0 = threadCpuMs(process.pid);
  const began = performance.now();
  for (let i = 0; i < batches; i++) {
    await batch();
    await gap();
  }
  const used = process.cpuUsage(cpu);
  const threads1 = threadCpuMs(process.pid);
  const n = batches * perBatch;
  const byThread = cpuUsByThread(threads0, threads1, n)
    .map((t) => `${t.tid === process.pid ? 'main' : t.tid} ${t.us.toFixed(1)}`)
    .join(', ');
  const us = (v: number) => (v / n).toFixed(1);
  console.log(`${n} steps in batches of ${perBatch} over ${sessionCount} sessions${gapMs > 0 ? `, ${gapMs} ms apart` : ''}: ${us(used.user + used.system)} µs CPU per step (user ${us(used.user)}, system ${us(used.system)}), ${us((performance.now() - began) * 1000)} µs wall; by thread: ${byThread}`);
} finally {
  for (const s of sessions) s.files.close();
  budget.close();
  await pool.close();
  fs.rmSync(base, { recursive: true, force: true });
}
