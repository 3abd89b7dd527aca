/**
 * A step batch as it crosses from the main thread to a step thread: numbers in one Float64Array
 * (transferred, not copied), the sessions' ids as strings, and the pipelines' states and the
 * sessions' descriptions as values, in one array. As objects (a task, its entries array, an
 * object of ten fields per step) the structured clone cost both threads a property lookup and a
 * map transition per field read, and an array made by `map` travelled as a sparse one, index by
 * index: in `perf` of steady's load that was 12 % of the step thread's samples and, with the
 * answer's two small objects, 13 % of the main thread's (docs/PERFORMANCE.md, "The batch's trip
 * as numbers"). The thread gets the same objects back (messages.ts owns their shape).
 *
 * The numbers: the claim slot and the count, then per entry a tag (PRODUCE, CONSUME), its flags
 * slot and whether its description comes with it (1 or 0), then its kind's fields in the order
 * `packStepBatch` writes them.
 */
import type { ConsumeStepTask, ProduceStepTask, StepBatchTask, StepTask } from './messages.js';

/** What a step channel posts for a batch: an array (not an object) so that nothing in it has keys to look up. */
export type PackedStepBatch = [nums: Float64Array, sessionIds: string[], values: unknown[]];

/** Fails to compile when a task gains a field the codec does not carry (see answer-codec.ts). */
type Carries<T, K extends keyof T> = Exclude<keyof T, K> extends never ? true : never;
const carried: [
  Carries<StepBatchTask, 'kind' | 'entries' | 'claimSlot'>,
  Carries<ProduceStepTask, 'kind' | 'sessionId' | 'flagsSlot' | 'session' | 'state' | 'nextSeq' | 'consumeAfter' | 'consumerState' | 'roomChunks' | 'roomBytes'>,
  Carries<ConsumeStepTask, 'kind' | 'sessionId' | 'flagsSlot' | 'session' | 'state' | 'seqs'>,
] = [true, true, true];
void carried;

const PRODUCE = 1;
const CONSUME = 2;

/**
 * The batch, packed: `nums.buffer` may be transferred. An entry's description (`session`) is
 * carried only where `describe(entry)` says the thread needs it; the entries are not changed.
 */
export function packStepBatch(task: StepBatchTask, describe: (entry: StepTask) => boolean): PackedStepBatch {
  const entries = task.entries;
  // Sized first and written in place: no array of numbers grown and copied on the way.
  let size = 2;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    size += e.kind === 'produce-step' ? 7 : 4 + e.seqs.length;
  }
  const n = new Float64Array(size);
  const ids: string[] = [];
  const values: unknown[] = [];
  let i = 0;
  n[i++] = task.claimSlot;
  n[i++] = entries.length;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    ids.push(e.sessionId);
    const described = e.session !== undefined && describe(e);
    n[i++] = e.kind === 'produce-step' ? PRODUCE : CONSUME;
    n[i++] = e.flagsSlot;
    n[i++] = described ? 1 : 0;
    if (described) values.push(e.session);
    if (e.kind === 'produce-step') {
      n[i++] = e.nextSeq;
      n[i++] = e.consumeAfter ? 1 : 0;
      n[i++] = e.roomChunks;
      n[i++] = e.roomBytes;
      values.push(e.state, e.consumerState);
    } else {
      n[i++] = e.seqs.length;
      for (const s of e.seqs) n[i++] = s;
      values.push(e.state);
    }
  }
  return [n, ids, values];
}

/** The batch `packStepBatch` packed, as a task (entries carry `session` only where it came). */
export function unpackStepBatch([nums, ids, values]: PackedStepBatch): StepBatchTask {
  let i = 0;
  let v = 0;
  const claimSlot = nums[i++]!;
  const count = nums[i++]!;
  const entries: StepTask[] = [];
  for (let k = 0; k < count; k++) {
    const tag = nums[i++]!;
    const flagsSlot = nums[i++]!;
    const session = nums[i++] === 1 ? (values[v++] as Uint8Array) : undefined;
    const sessionId = ids[k]!;
    if (tag === PRODUCE) {
      const nextSeq = nums[i++]!;
      const consumeAfter = nums[i++] === 1;
      const roomChunks = nums[i++]!;
      const roomBytes = nums[i++]!;
      const state = values[v++];
      const consumerState = values[v++];
      entries.push({ kind: 'produce-step', sessionId, flagsSlot, session, state, nextSeq, consumeAfter, consumerState, roomChunks, roomBytes });
    } else if (tag === CONSUME) {
      const seqs: number[] = [];
      for (let s = nums[i++]!; s > 0; s--) seqs.push(nums[i++]!);
      entries.push({ kind: 'consume-step', sessionId, flagsSlot, session, state: values[v++], seqs });
    } else throw new Error(`a packed step batch has an unknown entry tag ${tag}`);
  }
  return { kind: 'step-batch', entries, claimSlot };
}
