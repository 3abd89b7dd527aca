/**
 * The cheapest shape of tandem's data path, for the `steady-handoff` floor: a frame is made on
 * another thread and its chunk and its result are on disk before it is sent, as the issue's
 * guarantees ask, with none of tandem's machinery. Every HANDOFF_TICK_MS (tandem's
 * STEP_TIMER_TICK_MS default) the main thread sends the connections that fell due to one worker
 * thread in one message (no Piscina, no promises, numbers only). A connection falls due as a
 * tandem session's step would: on the first boundary of the granularity tandem's timer wheel
 * gives its interval, with tandem's defaults (sessions/timer-wheel.ts), so both gather as many
 * frames a message. For each frame the worker appends one framed record (bench/fs-cost.ts's
 * format) to that connection's chunks file and one to its results file, both held open (or,
 * with `appends` 1, the frame alone to one file), and answers with the records' times in one
 * message; the main thread then sends the frames. What this costs per result, beside the bare
 * floor of the same load, is what a thread hop and tandem's two appends cost on this machine: the
 * part of tandem's CPU per result that any design keeping its guarantees pays.
 *
 * Two variants answer what a redesign would buy (docs/PERFORMANCE.md, "Even phases"): with
 * `appends` 0 the worker writes nothing (the hop alone), and with `timer` 'worker' the worker
 * keeps the schedule and its own tick, so a tick wakes one thread and the answer the main thread,
 * where the main thread's tick, the worker and the answer wake three.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { HEADER_BYTES, frameRecord } from './fs-cost.js';
import { loadConfig } from '../src/config.js';
import { waitEnd, waitGranularity } from '../src/sessions/timer-wheel.js';

/** tandem's variables for how coarse its waits between steps are: the hand-off follows them when set. */
const STEP_TIMER_VARS = ['STEP_TIMER_TICK_MS', 'STEP_TIMER_SLACK_PERCENT', 'STEP_TIMER_MAX_SLACK_MS'] as const;

/** The STEP_TIMER_* variables of `env` alone: what the hand-off takes from an environment. */
export function stepTimerEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(STEP_TIMER_VARS.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
}

/**
 * How coarse tandem's waits between steps are: its defaults, or the STEP_TIMER_* variables of this
 * process's environment (bench/wake-cost.ts measures a wake-up at its tick).
 */
export const STEP_TIMER = loadConfig(stepTimerEnv(process.env)).stepTimer;
/** The tick the due connections are gathered on, ms (tandem's STEP_TIMER_TICK_MS). */
const HANDOFF_TICK_MS = STEP_TIMER.tickMs;

/** Epoch ms with sub-ms precision, as tandem stamps `producedAt`. */
export const nowMs = () => performance.timeOrigin + performance.now();
/** The demo pipeline's text, made the same way on both threads from the record's time. */
export const demoText = (seq: number, producedAt: number) => `Data from producer #${seq} at ${(producedAt / 1000).toFixed(3)}`;

/** A connection fed through the hand-off: `send` gets each frame's seq and time once it is on disk. */
export interface HandoffFeed {
  stop(): void;
}

/** Records appended per frame: none (the hop alone), the frame, or its chunk and then its result, each to its own log. */
export type HandoffAppends = 0 | 1 | 2;
/** Which thread keeps the schedule and ticks: the main thread (as tandem's timer wheel does), or the worker. */
export type HandoffTimer = 'main' | 'worker';

/** When a connection's frames fall due: every `intervalMs`, each on the first boundary of `granularityMs` at or after. */
interface Schedule {
  seq: number;
  /** Epoch ms (nowMs), the same on both threads. */
  dueAt: number;
  readonly intervalMs: number;
  readonly granularityMs: number;
}

/** The connections of `schedules` due at `now`, as id, seq pairs, each moved on to its next frame. */
function takeDue(schedules: Map<number, Schedule>, now: number): number[] {
  const due: number[] = [];
  for (const [id, c] of schedules) {
    if (waitEnd(c.dueAt, c.granularityMs) > now) continue;
    c.dueAt += c.intervalMs;
    due.push(id, ++c.seq);
  }
  return due;
}

type ToWorker = Float64Array | { open: number; schedule: Schedule | null } | { close: number };

interface HandoffData {
  dir: string;
  appends: HandoffAppends;
  timer: HandoffTimer;
}

/** The main thread's side: one worker, one tick for every connection. */
export class Handoff {
  readonly #worker: Worker;
  readonly #timer: HandoffTimer;
  readonly #sends = new Map<number, (seq: number, producedAt: number) => void>();
  /** The schedules, when this thread keeps them. */
  readonly #schedules = new Map<number, Schedule>();
  #nextId = 1;

  constructor(dir: string, appends: HandoffAppends, timer: HandoffTimer = 'main') {
    fs.mkdirSync(dir, { recursive: true });
    this.#timer = timer;
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { dir, appends, timer } satisfies HandoffData });
    this.#worker.unref();
    this.#worker.on('message', (done: Float64Array) => {
      for (let i = 0; i < done.length; i += 3) this.#sends.get(done[i]!)?.(done[i + 1]!, done[i + 2]!);
    });
    if (timer === 'main')
      setInterval(() => {
        const due = takeDue(this.#schedules, nowMs());
        if (due.length > 0) this.#worker.postMessage(Float64Array.from(due) satisfies ToWorker);
      }, HANDOFF_TICK_MS).unref();
  }

  /** Feeds one frame every `intervalMs` to `send`, each appended on the worker first. */
  feed(intervalMs: number, send: (seq: number, producedAt: number) => void): HandoffFeed {
    const id = this.#nextId++;
    const schedule: Schedule = { seq: 0, dueAt: nowMs() + intervalMs, intervalMs, granularityMs: waitGranularity(intervalMs, STEP_TIMER) };
    this.#sends.set(id, send);
    if (this.#timer === 'main') this.#schedules.set(id, schedule);
    this.#worker.postMessage({ open: id, schedule: this.#timer === 'worker' ? schedule : null } satisfies ToWorker);
    return {
      stop: () => {
        this.#schedules.delete(id);
        if (this.#sends.delete(id)) this.#worker.postMessage({ close: id } satisfies ToWorker);
      },
    };
  }
}

/** The worker's side: held files per connection, its records appended per frame; the schedules too with its own timer. */
function serveWorker({ dir, appends, timer }: HandoffData): void {
  const fds = new Map<number, number[]>();
  const schedules = new Map<number, Schedule>();
  const buf = Buffer.allocUnsafe(HEADER_BYTES + 256);
  const logs = appends === 2 ? ['chunks', 'results'] : appends === 1 ? ['log'] : [];
  /** Appends the frames of id, seq pairs and tells the main thread their times. */
  const make = (due: ArrayLike<number>) => {
    const done = new Float64Array((due.length / 2) * 3);
    for (let i = 0, j = 0; i < due.length; i += 2, j += 3) {
      const id = due[i]!;
      const seq = due[i + 1]!;
      const producedAt = nowMs();
      const text = demoText(seq, producedAt);
      const [chunks, results] = fds.get(id)!;
      // The chunk as the demo producer writes it, then (with two logs) the result as tandem logs it: its JSON.
      if (chunks !== undefined) fs.writeSync(chunks, buf, 0, frameRecord(buf, 0, seq, text));
      if (results !== undefined) fs.writeSync(results, buf, 0, frameRecord(buf, 0, seq, JSON.stringify(text)));
      done[j] = id;
      done[j + 1] = seq;
      done[j + 2] = producedAt;
    }
    parentPort!.postMessage(done);
  };
  if (timer === 'worker')
    setInterval(() => {
      const due = takeDue(schedules, nowMs());
      if (due.length > 0) make(due);
    }, HANDOFF_TICK_MS);
  parentPort!.on('message', (m: ToWorker) => {
    if (m instanceof Float64Array) return make(m);
    if ('open' in m) {
      fds.set(m.open, logs.map((log) => fs.openSync(path.join(dir, `${m.open}.${log}`), 'a')));
      if (m.schedule) schedules.set(m.open, m.schedule);
      return;
    }
    schedules.delete(m.close);
    for (const fd of fds.get(m.close) ?? []) fs.closeSync(fd);
    fds.delete(m.close);
  });
}

if (!isMainThread && (workerData as Partial<HandoffData> | null)?.dir) serveWorker(workerData as HandoffData);
