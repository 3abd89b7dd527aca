/**
 * Quiet resident steps: what a step thread publishes of a resident's steps that need no answer,
 * and how the main thread reads it (docs/PERFORMANCE.md, "Quiet steps").
 *
 * A resident step of the commonest shape (it ran and stays, its lent consumer took every chunk
 * it wrote, its thread sent every result to the client, and no log segment began or was left)
 * needs nothing of the main thread. Its thread publishes the step itself (the logs' ends and the
 * read mark, as the main thread does for an answered step) and writes here, in the session's
 * shared memory, what the main thread would have taken from its answer: its totals since the
 * residency began, when its next step is due, one sample of timings per result, and the
 * pipeline's two states as JSON. The main thread reads the numbers when it likes (every
 * STEP_QUIET_CATCH_UP_MS, and before anything that depends on them), and the states only when the
 * residency ends without the thread's answer (taken back, or its thread gone): it goes on from
 * the last step published, quiet or answered.
 *
 * Ordering. Everything is written while the thread holds the step's claim (flags.ts
 * FLAG.RESIDENT), so the main thread cannot take the resident back between the step and what it
 * publishes. The numbers are written under a sequence lock (FLAG.QUIET_VERSION: odd while they
 * change); a reader that finds them changing reads again. An answered step is numbered like a
 * quiet one, and the thread runs no further step of that resident until the main thread took the
 * answer in (FLAG.RESIDENT_ACK): quiet steps never overtake an answer.
 *
 * A step whose states JSON cannot carry exactly (anything but null, booleans, finite numbers,
 * strings, plain objects and arrays of them, or undefined at the top) or whose JSON is longer than
 * STEP_QUIET_STATE_BYTES is answered as before; so is one whose samples would overrun the ring
 * (STEP_QUIET_SAMPLES) before the main thread read the last ones.
 */
import { FLAG, QUIET, type SessionFlags } from './flags.js';

/** Numbers a sample holds per result. */
export const SAMPLE_FIELDS = 5;
/** Sample fields: chunk written → result sent, chunk written → consumer began, the consumer's run, the step's wait, the producer's run (ms; the last two on a step's first result only, NaN on the others). */
export const SAMPLE = { LATENCY: 0, PICKUP: 1, CONSUMER_RUN: 2, STEP_WAIT: 3, STEP_RUN: 4 } as const;

/** Quiet steps' limits (config.ts names the variables). */
export interface QuietLimits {
  /** Bytes of JSON the two states may take (STEP_QUIET_STATE_BYTES; 0: quiet steps off). */
  stateBytes: number;
  /** Results whose samples wait for the main thread, at most (STEP_QUIET_SAMPLES). */
  samples: number;
}

export const QUIET_OFF: QuietLimits = Object.freeze({ stateBytes: 0, samples: 0 });

/** The shared memory of every session's quiet steps beside its flags: a slot each, the flags' slot numbers. */
export interface QuietSlabInfo {
  buffer: SharedArrayBuffer;
  limits: QuietLimits;
}

function slotBytes(limits: QuietLimits): number {
  return limits.samples * SAMPLE_FIELDS * 8 + Math.ceil(limits.stateBytes / 8) * 8;
}

/** A slab for `capacity` sessions (the flags slab's capacity). */
export function quietSlab(capacity: number, limits: QuietLimits): QuietSlabInfo {
  return { buffer: new SharedArrayBuffer(limits.stateBytes > 0 ? capacity * slotBytes(limits) : 0), limits };
}

interface SlotViews {
  samples: Float64Array;
  state: Uint8Array;
}

function views(slab: QuietSlabInfo, slot: number): SlotViews {
  const { limits } = slab;
  const at = slot * slotBytes(limits);
  const n = limits.samples * SAMPLE_FIELDS;
  return { samples: new Float64Array(slab.buffer, at, n), state: new Uint8Array(slab.buffer, at + n * 8, limits.stateBytes) };
}

/** What a residency's quiet steps came to, as the step thread wrote it last. Totals count from the residency's start. */
export interface QuietProgress {
  /** The residency's step number of the last quiet step (0: none yet). */
  step: number;
  /** The producer's next seq after it. */
  nextSeq: number;
  /** When the resident's next step is due (epoch ms). */
  dueAt: number;
  /** Quiet steps, their chunks, their bytes, their results (one a chunk), the producer's calls. */
  steps: number;
  chunks: number;
  bytes: number;
  results: number;
  calls: number;
  /** Samples written since the residency began. */
  samples: number;
}

/** Progress with nothing in it: a residency's before its first quiet step. */
export function noQuietProgress(): QuietProgress {
  return { step: 0, nextSeq: 0, dueAt: 0, steps: 0, chunks: 0, bytes: 0, results: 0, calls: 0, samples: 0 };
}

/** A residency begins: nothing quiet of it yet (the main thread, before the thread is told). */
export function resetQuiet(flags: SessionFlags): void {
  const f = flags.floats;
  for (const i of Object.values(QUIET)) f[i] = 0;
  Atomics.store(flags.ints, FLAG.RESIDENT_ACK, 0);
  // A thread ended in the middle of a write may have left the lock odd.
  Atomics.store(flags.ints, FLAG.QUIET_VERSION, 0);
}

// ---- the step thread's side ----

/** Whether `v` survives JSON unchanged (a top-level undefined is carried apart). */
export function jsonExact(v: unknown, depth = 0): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (typeof v !== 'object' || depth > 32) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!jsonExact(v[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || !jsonExact(x, depth + 1)) return false;
  }
  return true;
}

/** How a top-level undefined travels (a state that is this very string is answered instead). */
const UNDEFINED = '\u0000tandem:undefined';

function stateJson(v: unknown): string | null {
  if (v === undefined) return JSON.stringify(UNDEFINED);
  return v !== UNDEFINED && jsonExact(v) ? JSON.stringify(v) : null;
}

/** A step thread's writer of its residents' quiet steps. */
export class QuietWriter {
  readonly #slab: QuietSlabInfo;
  readonly #views: Array<SlotViews | undefined> = [];
  readonly #encoder = new TextEncoder();
  /** The states of the step being written, encoded once the step was found quiet. */
  readonly #staged: Uint8Array;
  #stagedLength = 0;

  constructor(slab: QuietSlabInfo) {
    this.#slab = slab;
    this.#staged = new Uint8Array(slab.limits.stateBytes);
  }

  /** Whether `results` more samples fit before the main thread read those written. */
  hasRoom(flags: SessionFlags, written: number, results: number): boolean {
    return written + results - flags.floats[QUIET.SAMPLES_TAKEN]! <= this.#slab.limits.samples;
  }

  /** Encodes the step's two states: false when JSON cannot carry them exactly, or they take more than STEP_QUIET_STATE_BYTES. */
  stage(state: unknown, consumerState: unknown): boolean {
    const p = stateJson(state);
    const c = p === null ? null : stateJson(consumerState);
    if (p === null || c === null) return false;
    const json = `[${p},${c}]`;
    if (json.length > this.#staged.length) return false;
    const { read, written } = this.#encoder.encodeInto(json, this.#staged);
    if (read !== json.length) return false;
    this.#stagedLength = written;
    return true;
  }

  /**
   * Writes a quiet step of the session in `slot`: its samples (`sample(i, into, at)` fills result
   * i's), the numbers and the states staged; then `publish()` makes the step visible (the logs'
   * ends). All under the sequence lock, the states too: a thread ended anywhere in here leaves it
   * odd (quietTorn), never the last step's numbers beside the next one's states.
   */
  write(flags: SessionFlags, slot: number, p: QuietProgress, results: number, sample: (i: number, into: Float64Array, at: number) => void, publish: () => void): void {
    const v = (this.#views[slot] ??= views(this.#slab, slot));
    Atomics.add(flags.ints, FLAG.QUIET_VERSION, 1);
    const ring = this.#slab.limits.samples;
    const first = p.samples - results;
    for (let i = 0; i < results; i++) sample(i, v.samples, ((first + i) % ring) * SAMPLE_FIELDS);
    v.state.set(this.#staged.subarray(0, this.#stagedLength));
    const f = flags.floats;
    f[QUIET.NEXT_SEQ] = p.nextSeq;
    f[QUIET.DUE_AT] = p.dueAt;
    f[QUIET.STEPS] = p.steps;
    f[QUIET.CHUNKS] = p.chunks;
    f[QUIET.BYTES] = p.bytes;
    f[QUIET.RESULTS] = p.results;
    f[QUIET.CALLS] = p.calls;
    f[QUIET.SAMPLES] = p.samples;
    f[QUIET.STATE_LENGTH] = this.#stagedLength;
    f[QUIET.STEP] = p.step;
    publish();
    Atomics.add(flags.ints, FLAG.QUIET_VERSION, 1);
  }

}

/**
 * Whether a step whose first result is `first` may be quiet: every result before it was delivered,
 * by the main thread or by a quiet step (`quietLast`, the last seq of the resident's quiet steps),
 * so the main thread holds nothing of the session waiting to be sent.
 */
export function followsDelivered(flags: SessionFlags, first: number, quietLast: number): boolean {
  return Math.max(Atomics.load(flags.ints, FLAG.DELIVERED), quietLast) >= first - 1;
}

/** The main thread delivered every result up to `seq` (Session's flush). */
export function markDelivered(flags: SessionFlags, seq: number): void {
  Atomics.store(flags.ints, FLAG.DELIVERED, seq);
}

/** The last step an answer carried that the main thread took in: the resident's next step may run. */
export function ackAnswer(flags: SessionFlags, step: number): void {
  Atomics.store(flags.ints, FLAG.RESIDENT_ACK, step);
}

/** Whether the main thread took in the answer of step `step` (an answered step's next waits for it). */
export function answerTaken(flags: SessionFlags, step: number): boolean {
  return Atomics.load(flags.ints, FLAG.RESIDENT_ACK) >= step;
}

// ---- the main thread's side ----

/** Copies progress `from` into `to`. */
export function copyQuietProgress(from: QuietProgress, to: QuietProgress): void {
  to.step = from.step;
  to.nextSeq = from.nextSeq;
  to.dueAt = from.dueAt;
  to.steps = from.steps;
  to.chunks = from.chunks;
  to.bytes = from.bytes;
  to.results = from.results;
  to.calls = from.calls;
  to.samples = from.samples;
}

/** When the resident's next quiet step is due, as its thread wrote it last (0: none written). */
export function quietDueAt(flags: SessionFlags): number {
  return flags.floats[QUIET.DUE_AT]!;
}

/** The step number of the last quiet step, read without the lock (a hint: is there news?). */
export function quietStep(flags: SessionFlags): number {
  return flags.floats[QUIET.STEP]!;
}

/** Whether the thread was stopped in the middle of writing a quiet step (the lock left odd). */
export function quietTorn(flags: SessionFlags): boolean {
  return (Atomics.load(flags.ints, FLAG.QUIET_VERSION) & 1) === 1;
}

/** How many times a reader looks for the lock even before it gives up until its next catch-up (a write takes well under a µs). */
const READ_TRIES = 100;

/** The main thread's reader of quiet steps. */
export class QuietReader {
  readonly #slab: QuietSlabInfo;
  /** Each slot's views, made once (a typed array made per read cost the catch-up a fifth of its time). */
  readonly #views: Array<SlotViews | undefined> = [];
  /** One for every read (a TextDecoder made per read cost a storm's stops 6 µs each). */
  readonly #decoder = new TextDecoder();

  #viewsOf(slot: number): SlotViews {
    return (this.#views[slot] ??= views(this.#slab, slot));
  }

  constructor(slab: QuietSlabInfo) {
    this.#slab = slab;
  }

  /**
   * The numbers as the thread wrote them last, consistent (into `out`); false while none were
   * written, or while the thread is in the middle of a write (it may have been preempted there:
   * the reader asks again at its next catch-up rather than wait for it).
   */
  progress(flags: SessionFlags, out: QuietProgress): boolean {
    const f = flags.floats;
    const ints = flags.ints;
    for (let tries = 0; tries < READ_TRIES; tries++) {
      const before = Atomics.load(ints, FLAG.QUIET_VERSION);
      if ((before & 1) === 1) continue;
      out.step = f[QUIET.STEP]!;
      out.nextSeq = f[QUIET.NEXT_SEQ]!;
      out.dueAt = f[QUIET.DUE_AT]!;
      out.steps = f[QUIET.STEPS]!;
      out.chunks = f[QUIET.CHUNKS]!;
      out.bytes = f[QUIET.BYTES]!;
      out.results = f[QUIET.RESULTS]!;
      out.calls = f[QUIET.CALLS]!;
      out.samples = f[QUIET.SAMPLES]!;
      if (Atomics.load(ints, FLAG.QUIET_VERSION) === before) return out.step > 0;
    }
    return false;
  }

  /** Copies samples `from` to `to` (excluded) into `into` (5 numbers each), then lets the thread write over them. */
  takeSamples(flags: SessionFlags, slot: number, from: number, to: number, into: Float64Array): void {
    const ring = this.#slab.limits.samples;
    const samples = this.#viewsOf(slot).samples;
    let k = 0;
    for (let i = from; i < to; i++) {
      const at = (i % ring) * SAMPLE_FIELDS;
      for (let j = 0; j < SAMPLE_FIELDS; j++) into[k++] = samples[at + j]!;
    }
    flags.floats[QUIET.SAMPLES_TAKEN] = to;
  }

  /** The states of the last quiet step: read only while the thread cannot write (the residency ended). */
  states(flags: SessionFlags, slot: number): { state: unknown; consumerState: unknown } {
    const length = flags.floats[QUIET.STATE_LENGTH]!;
    const json = this.#decoder.decode(this.#viewsOf(slot).state.subarray(0, length));
    const [state, consumerState] = JSON.parse(json) as [unknown, unknown];
    return { state: state === UNDEFINED ? undefined : state, consumerState: consumerState === UNDEFINED ? undefined : consumerState };
  }
}
