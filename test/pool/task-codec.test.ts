import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acrossAPort } from '../helpers/packed.js';
import { packStepBatch, unpackStepBatch } from '../../src/pool/task-codec.js';
import type { ConsumeStepTask, ProduceStepTask, StepBatchTask, StepTask } from '../../src/pool/messages.js';

/** Sends the packed batch across a real port, as the step channel does, and reads it back. */
async function overThePort(task: StepBatchTask, describe: (e: StepTask) => boolean): Promise<StepBatchTask> {
  return unpackStepBatch(await acrossAPort(packStepBatch(task, describe)));
}

const description = Uint8Array.from([0xff, 0x0d, 0x6f, 0x22, 0x01]);

const produce: ProduceStepTask = {
  kind: 'produce-step',
  sessionId: '5b0e8c1e-0d0c-4e8e-9d57-3f1c0a9e2b11',
  flagsSlot: 17,
  session: description,
  state: { n: 8, at: new Date(0), big: 2n ** 70n, words: new Map([['héllo ✓', 1]]) },
  nextSeq: 9_007_199_254_740_000,
  consumeAfter: true,
  consumerState: [1, 'two'],
  roomChunks: 4096,
  roomBytes: Infinity,
};

const consume: ConsumeStepTask = {
  kind: 'consume-step',
  sessionId: 'a-client-chosen-id',
  flagsSlot: 0,
  session: description,
  state: undefined,
  seqs: [3, 4, 5, 1_000_000],
};

describe('a step batch packed for the trip to a step thread', () => {
  it('comes back as the same task: both kinds of step, states of any kind, a description only where asked', async () => {
    const task: StepBatchTask = {
      kind: 'step-batch',
      claimSlot: 12,
      entries: [
        produce,
        consume,
        { ...produce, flagsSlot: 3, consumeAfter: false, consumerState: undefined, state: null, session: undefined, roomBytes: 0 },
        { ...consume, flagsSlot: 4, seqs: [], state: 'text', session: undefined },
      ],
    };
    // Only the first two sessions' descriptions are wanted: the thread holds the others'.
    const got = await overThePort(task, (e) => e.flagsSlot === 17 || e.flagsSlot === 0);
    assert.deepStrictEqual(got, task);
    assert.deepStrictEqual(
      await overThePort(task, () => false),
      { ...task, entries: task.entries.map((e) => ({ ...e, session: undefined })) },
      'a description the thread holds is left out',
    );
    assert.equal(task.entries[0]!.session, description, 'the main thread keeps its entries as they were');
  });

  it('an empty batch', async () => {
    const empty: StepBatchTask = { kind: 'step-batch', claimSlot: 0, entries: [] };
    assert.deepStrictEqual(await overThePort(empty, () => true), empty);
  });

  it('refuses numbers it cannot read rather than inventing steps', () => {
    assert.throws(() => unpackStepBatch([Float64Array.from([0, 1, 7, 0, 0]), ['id'], []]), /unknown entry tag 7/);
  });
});
