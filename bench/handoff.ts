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

/**
 * How coarse tandem's waits between steps are: its defaults, or the STEP_TIMER_* variables of this
 * process's environment (bench/wake-cost.ts measures a wake-up at its tick).
 */
export const STEP_TIMER = loadConfig(Object.fromEntries(STEP_TIMER_VARS.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])))).stepTimer;
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

interface Conn {
  seq: number;
  /** When its next frame is due, ms; it is sent on the first boundary of `granularityMs` at or after. */
  dueAt: number;
  readonly intervalMs: number;
  readonly granularityMs: number;
  readonly send: (seq: number, producedAt: number) => void;
}

/** The main thread's side: one worker, one tick for every connection. */
export class Handoff {
  readonly #worker: Worker;
  readonly #conns = new Map<number, Conn>();
  #nextId = 1;

  /** @param appends records appended per frame: 1 (the frame), or 2 (its chunk, then its result, each to its own log). */
  constructor(dir: string, appends: 1 | 2) {
    fs.mkdirSync(dir, { recursive: true });
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { dir, appends } });
    this.#worker.unref();
    this.#worker.on('message', (done: Float64Array) => {
      for (let i = 0; i < done.length; i += 3) this.#conns.get(done[i]!)?.send(done[i + 1]!, done[i + 2]!);
    });
    setInterval(() => this.#tick(), HANDOFF_TICK_MS).unref();
  }

  /** Feeds one frame every `intervalMs` to `send`, each appended on the worker first. */
  feed(intervalMs: number, send: (seq: number, producedAt: number) => void): HandoffFeed {
    const id = this.#nextId++;
    this.#conns.set(id, { seq: 0, dueAt: performance.now() + intervalMs, intervalMs, granularityMs: waitGranularity(intervalMs, STEP_TIMER), send });
    this.#worker.postMessage({ open: id });
    return {
      stop: () => {
        if (this.#conns.delete(id)) this.#worker.postMessage({ close: id });
      },
    };
  }

  #tick(): void {
    const now = performance.now();
    const due: number[] = [];
    for (const [id, c] of this.#conns) {
      if (waitEnd(c.dueAt, c.granularityMs) > now) continue;
      c.dueAt += c.intervalMs;
      due.push(id, ++c.seq);
    }
    if (due.length > 0) this.#worker.postMessage(Float64Array.from(due));
  }
}

/** The worker's side: held files per connection, one record (or a chunk's and a result's) appended per frame. */
function serveWorker(dir: string, appends: 1 | 2): void {
  const fds = new Map<number, number[]>();
  const buf = Buffer.allocUnsafe(HEADER_BYTES + 256);
  const logs = appends === 2 ? ['chunks', 'results'] : ['log'];
  parentPort!.on('message', (m: Float64Array | { open: number } | { close: number }) => {
    if ('open' in m) return void fds.set(m.open, logs.map((log) => fs.openSync(path.join(dir, `${m.open}.${log}`), 'a')));
    if ('close' in m) {
      for (const fd of fds.get(m.close) ?? []) fs.closeSync(fd);
      fds.delete(m.close);
      return;
    }
    const done = new Float64Array((m.length / 2) * 3);
    for (let i = 0, j = 0; i < m.length; i += 2, j += 3) {
      const id = m[i]!;
      const seq = m[i + 1]!;
      const producedAt = nowMs();
      const text = demoText(seq, producedAt);
      const [chunks, results] = fds.get(id)!;
      // The chunk as the demo producer writes it, then (with two logs) the result as tandem logs it: its JSON.
      fs.writeSync(chunks!, buf, 0, frameRecord(buf, 0, seq, text));
      if (results !== undefined) fs.writeSync(results, buf, 0, frameRecord(buf, 0, seq, JSON.stringify(text)));
      done[j] = id;
      done[j + 1] = seq;
      done[j + 2] = producedAt;
    }
    parentPort!.postMessage(done);
  });
}

if (!isMainThread && (workerData as { dir?: string } | null)?.dir) serveWorker((workerData as { dir: string }).dir, (workerData as { appends: 1 | 2 }).appends);
