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
  const n: number[] = [task.claimSlot, entries.length];
  const ids: string[] = [];
  const values: unknown[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    ids.push(e.sessionId);
    const described = e.session !== undefined && describe(e);
    n.push(e.kind === 'produce-step' ? PRODUCE : CONSUME, e.flagsSlot, described ? 1 : 0);
    if (described) values.push(e.session);
    if (e.kind === 'produce-step') {
      n.push(e.nextSeq, e.consumeAfter ? 1 : 0, e.roomChunks, e.roomBytes);
      values.push(e.state, e.consumerState);
    } else {
      n.push(e.seqs.length);
      for (const s of e.seqs) n.push(s);
      values.push(e.state);
    }
  }
  return [new Float64Array(n), ids, values];
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
