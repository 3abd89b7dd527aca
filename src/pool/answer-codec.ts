/**
 * A step batch's answer as it crosses from a step thread to the main thread: numbers in one
 * Float64Array (transferred, not copied), the results' JSON texts, and the pipelines' states as
 * values, posted as an array of the three (an object's keys cost a lookup each to read back:
 * task-codec.ts). As an object graph (an outcome, its result, chunks, consumed, results, log ends, read
 * mark, timing: about ten objects a step) the structured clone cost 26 µs per batch of three
 * steady-shaped answers to write and read back, against 9.8 µs this way (docs/PERFORMANCE.md,
 * "The step channel"). The main thread gets the same objects back (messages.ts owns their
 * shape); an outcome with an error, or one that threw, travels as the object it is (rare).
 *
 * Arrays read back are made at their final length (a `[]` grown by `push` took 17 slots for the
 * one chunk or result of most steps).
 *
 * A batch's thread may answer its steps in parts (STEP_BATCH_ANSWER_US, worker.ts runBatch): each
 * part carries the outcomes of the entries it ran since the last one, and the last part, `final`,
 * the rest and the task's timing. Read back, a part has an outcome for each of the batch's entries,
 * null for those it does not carry: as for an entry taken back before it began, the batcher tells
 * those nothing (step-batcher.ts).
 *
 * The numbers: the task's timing on its thread (when it began, when it ended; 0 and 0 in a part
 * that is not final), the batch's entry count, the first entry carried and how many, whether it is
 * the final part (1 or 0), then per outcome carried a tag (NONE, PRODUCE, CONSUME, OBJECT) and its
 * fields in the order `pack*` writes them; an optional part is a 0, or a 1 and its fields.
 */
import type { ChunkRecord, ConsumeStepResult, ProduceStepResult, ResultRecord, StepBatchResult, StepOutcome, TaskTiming } from './messages.js';
import type { ChunkLogEnd, ReadMark, ResultLogEnd } from '../spool/progress.js';

/** What a step thread posts for a batch's answer. */
export type PackedBatch = [nums: Float64Array, texts: string[], values: unknown[]];

/**
 * Fails to compile when a type gains a field the codec does not carry: the fields listed are the
 * ones `pack*` writes and the reader reads.
 */
type Carries<T, K extends keyof T> = Exclude<keyof T, K> extends never ? true : never;
const carried: [
  Carries<ProduceStepResult, 'skipped' | 'state' | 'delayMs' | 'done' | 'chunks' | 'calls' | 'threadId' | 'error' | 'timing' | 'consumed' | 'chunkLog'>,
  // `sentAll` stays on the thread that made it (residents-thread.ts): not carried.
  Carries<ConsumeStepResult, 'skipped' | 'state' | 'results' | 'threadId' | 'error' | 'timing' | 'resultLog' | 'readMark' | 'sentAll'>,
  Carries<ChunkRecord, 'seq' | 'producedAt' | 'sizeBytes'>,
  Carries<ResultRecord, 'seq' | 'json' | 'takenAt' | 'doneAt'>,
  Carries<ChunkLogEnd, 'segment' | 'bytes' | 'committed'>,
  Carries<ResultLogEnd, 'segment' | 'bytes' | 'openedAt' | 'windowFrom'>,
  Carries<ReadMark, 'consumed' | 'segment' | 'offset' | 'left'>,
] = [true, true, true, true, true, true, true];
void carried;

const NONE = 0;
const PRODUCE = 1;
const CONSUME = 2;
const OBJECT = 3;

/**
 * The outcomes of entries `from` to `to` (excluded) of a batch, packed: `nums.buffer` may be
 * transferred. `timing` (the task's, on its thread) is given for the final part only.
 */
export function packBatch(outcomes: ReadonlyArray<StepOutcome | null>, from: number, to: number, timing: TaskTiming | null): PackedBatch {
  const n: number[] = [timing?.startedAt ?? 0, timing?.finishedAt ?? 0, outcomes.length, from, to - from, timing ? 1 : 0];
  const texts: string[] = [];
  const values: unknown[] = [];
  for (let k = from; k < to; k++) {
    const o = outcomes[k] ?? null;
    if (o === null) n.push(NONE);
    else if (!('ok' in o) || hasError(o.ok)) {
      n.push(OBJECT);
      values.push(o);
    } else if ('chunks' in o.ok) {
      n.push(PRODUCE);
      packProduce(o.ok, n, texts, values);
    } else {
      n.push(CONSUME);
      packConsume(o.ok, n, texts, values);
    }
  }
  return [new Float64Array(n), texts, values];
}

function hasError(r: ProduceStepResult | ConsumeStepResult): boolean {
  return r.error !== undefined || ('consumed' in r && r.consumed !== undefined && r.consumed.error !== undefined);
}

function packProduce(r: ProduceStepResult, n: number[], texts: string[], values: unknown[]): void {
  n.push(r.skipped ? 1 : 0, r.delayMs, r.done ? 1 : 0, r.calls, r.threadId, r.chunks.length);
  values.push(r.state);
  for (const c of r.chunks) n.push(c.seq, c.producedAt, c.sizeBytes);
  const t = r.timing;
  if (t) n.push(1, t.startedAt, t.finishedAt);
  else n.push(0);
  const cl = r.chunkLog;
  if (cl) n.push(1, cl.segment, cl.bytes, cl.committed);
  else n.push(0);
  if (r.consumed) {
    n.push(1);
    packConsume(r.consumed, n, texts, values);
  } else n.push(0);
}

function packConsume(c: ConsumeStepResult, n: number[], texts: string[], values: unknown[]): void {
  n.push(c.skipped ? 1 : 0, c.threadId, c.results.length);
  values.push(c.state);
  for (const r of c.results) {
    n.push(r.seq, r.takenAt, r.doneAt);
    texts.push(r.json);
  }
  const t = c.timing;
  if (t) n.push(1, t.startedAt, t.finishedAt);
  else n.push(0);
  const rl = c.resultLog;
  if (rl) n.push(1, rl.segment, rl.bytes, rl.openedAt, rl.windowFrom);
  else n.push(0);
  const rm = c.readMark;
  if (rm) {
    n.push(1, rm.consumed, rm.segment, rm.offset, rm.left.length);
    for (const s of rm.left) n.push(s);
  } else n.push(0);
}

/**
 * The part `packBatch` packed, as the same objects: an outcome for each of the batch's entries
 * (null for those the part does not carry), and the timing of a final part.
 */
export function unpackBatch(p: PackedBatch): StepBatchResult {
  return new Reader(p).batch();
}

class Reader {
  readonly #nums: Float64Array;
  readonly #texts: string[];
  readonly #values: unknown[];
  #i = 0;
  #text = 0;
  #value = 0;

  constructor([nums, texts, values]: PackedBatch) {
    this.#nums = nums;
    this.#texts = texts;
    this.#values = values;
  }

  batch(): StepBatchResult {
    const timing = { startedAt: this.#num(), finishedAt: this.#num() };
    const length = this.#num();
    const from = this.#num();
    const to = from + this.#num();
    const final = this.#num() === 1;
    const outcomes = new Array<StepOutcome | null>(length).fill(null);
    for (let o = from; o < to; o++) {
      const tag = this.#num();
      if (tag === NONE) outcomes[o] = null;
      else if (tag === OBJECT) outcomes[o] = this.#val() as StepOutcome;
      else if (tag === PRODUCE) outcomes[o] = { ok: this.#produce() };
      else if (tag === CONSUME) outcomes[o] = { ok: this.#consume() };
      else throw new Error(`a packed batch answer has an unknown outcome tag ${tag}`);
    }
    return final ? { outcomes, timing } : { outcomes, partial: true };
  }

  #num(): number {
    return this.#nums[this.#i++]!;
  }

  #val(): unknown {
    return this.#values[this.#value++];
  }

  #produce(): ProduceStepResult {
    const skipped = this.#num() === 1;
    const delayMs = this.#num();
    const done = this.#num() === 1;
    const calls = this.#num();
    const threadId = this.#num();
    const count = this.#num();
    const state = this.#val();
    const chunks = new Array<ChunkRecord>(count);
    for (let k = 0; k < count; k++) chunks[k] = { seq: this.#num(), producedAt: this.#num(), sizeBytes: this.#num() };
    const r: ProduceStepResult = { skipped, state, delayMs, done, chunks, calls, threadId };
    if (this.#num() === 1) r.timing = { startedAt: this.#num(), finishedAt: this.#num() };
    if (this.#num() === 1) r.chunkLog = { segment: this.#num(), bytes: this.#num(), committed: this.#num() };
    if (this.#num() === 1) r.consumed = this.#consume();
    return r;
  }

  #consume(): ConsumeStepResult {
    const skipped = this.#num() === 1;
    const threadId = this.#num();
    const count = this.#num();
    const state = this.#val();
    const results = new Array<ResultRecord>(count);
    for (let k = 0; k < count; k++) results[k] = { seq: this.#num(), json: this.#texts[this.#text++]!, takenAt: this.#num(), doneAt: this.#num() };
    const c: ConsumeStepResult = { skipped, state, results, threadId };
    if (this.#num() === 1) c.timing = { startedAt: this.#num(), finishedAt: this.#num() };
    if (this.#num() === 1) c.resultLog = { segment: this.#num(), bytes: this.#num(), openedAt: this.#num(), windowFrom: this.#num() };
    if (this.#num() === 1) {
      const consumed = this.#num();
      const segment = this.#num();
      const offset = this.#num();
      const nLeft = this.#num();
      const left = new Array<number>(nLeft);
      for (let k = 0; k < nLeft; k++) left[k] = this.#num();
      c.readMark = { consumed, segment, offset, left };
    }
    return c;
  }
}
