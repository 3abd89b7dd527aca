/**
 * The wake-up floor: what waking a thread costs this machine when there is nothing to do, by how
 * long the thread slept. Each figure comes from a child process of its own doing only this:
 *
 * - `timer`: an empty `setInterval` of the gap: one thread wakes, runs nothing, sleeps again;
 * - `hop`: the same timer posts a number to a worker thread, which posts it back: what a tick of
 *   tandem's step path costs before any step runs (the main thread's timer, the step thread's
 *   wake-up, the main thread's wake-up for the answer), with no session, no disk and no socket.
 *
 * The figure is the process's CPU (every thread, user + system) per firing over the window. On a
 * VM a thread that has slept pays for it when it wakes (the vCPU's return from idle, and caches and
 * TLBs its neighbours have since filled), so the longer the sleep, the dearer the wake-up: the bare
 * `ws` floors wake every ~1.5 ms (steady) or more often (crowd), tandem's step threads every tick
 * (STEP_TIMER_TICK_MS). docs/PERFORMANCE.md reads steady's CPU per result against it.
 *
 *   node dist/bench/wake-cost.js timer|hop GAP_MS SECONDS   # one figure, as JSON (a child of `npm run bench`)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { STEP_TIMER } from './handoff.js';
import { serviceNodeFlags } from './service-flags.js';

export type WakeShape = 'timer' | 'hop';

export interface WakeCost {
  shape: WakeShape;
  /** The timer's period, ms: how long the threads sleep between firings. */
  gapMs: number;
  firings: number;
  /** CPU of the whole process per firing, µs. */
  cpuUsPerFiring: number;
}

/** tandem's default STEP_TIMER_TICK_MS: how long its step threads sleep between ticks when every tick has work. */
export const TICK_MS = STEP_TIMER.tickMs;

/** The gaps measured: about the steady floor's between two sends, tandem's default tick, a coarse tick. */
export const WAKE_GAPS_MS = [...new Set([1, TICK_MS, 20])].sort((a, b) => a - b);

/** A child that has not answered this long after its window should have ended is killed, ms. */
const CHILD_GRACE_MS = 15_000;
/** Marks the worker a `hop` child starts, so that no other worker importing this module echoes. */
const ECHO = 'wake-cost echo';

/** Every shape at every gap, one child process each, one after the other. */
export async function measureWakeFloor(seconds: number, gaps: readonly number[] = WAKE_GAPS_MS): Promise<WakeCost[]> {
  const out: WakeCost[] = [];
  for (const shape of ['timer', 'hop'] as const) for (const gapMs of gaps) out.push(await measureInChild(shape, gapMs, seconds));
  return out;
}

function measureInChild(shape: WakeShape, gapMs: number, seconds: number): Promise<WakeCost> {
  return new Promise((resolve, reject) => {
    // With npm start's node flags: the runtime whose wake-ups the service pays.
    const child = spawn(process.execPath, [...serviceNodeFlags(), fileURLToPath(import.meta.url), shape, String(gapMs), String(seconds)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const what = `wake-cost ${shape} ${gapMs} ms`;
    const timer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + CHILD_GRACE_MS);
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    child.on('error', reject);
    // 'close', not 'exit': the child's stdout may still hold its figure when it has exited.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${what} ${signal ? `was killed (${signal})` : `exited with ${code}`}`));
      try {
        resolve(JSON.parse(text) as WakeCost);
      } catch {
        reject(new Error(`${what} printed no figure: ${text.slice(0, 200)}`));
      }
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(shape: WakeShape, gapMs: number, seconds: number): Promise<WakeCost> {
  let firings = 0;
  const worker = shape === 'hop' ? new Worker(new URL(import.meta.url), { workerData: ECHO }) : null;
  if (worker) {
    worker.on('message', () => {});
    await new Promise((r) => worker.once('online', r));
  }
  const timer = setInterval(() => {
    firings++;
    worker?.postMessage(firings);
  }, gapMs);
  await sleep(500); // the worker's first messages and the JIT's warm-up stay out of the window
  const cpu0 = process.cpuUsage();
  const firings0 = firings;
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const n = firings - firings0;
  clearInterval(timer);
  await worker?.terminate();
  if (n === 0) throw new Error(`the ${gapMs} ms timer never fired in ${seconds} s`);
  return { shape, gapMs, firings: n, cpuUsPerFiring: (cpu.user + cpu.system) / n };
}

if (!isMainThread && workerData === ECHO) parentPort!.on('message', (n: number) => parentPort!.postMessage(n));
else if (isMainThread && process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [shape, gap, seconds] = process.argv.slice(2);
  if ((shape !== 'timer' && shape !== 'hop') || !(Number(gap) >= 1) || !(Number(seconds) > 0)) {
    process.stderr.write('usage: wake-cost.js timer|hop GAP_MS SECONDS\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(await measure(shape, Number(gap), Number(seconds))));
}
