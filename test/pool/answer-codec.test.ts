import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acrossAPort } from '../helpers/packed.js';
import { packBatch, unpackBatch } from '../../src/pool/answer-codec.js';
import type { ConsumeStepResult, ProduceStepResult, StepBatchResult } from '../../src/pool/messages.js';

const timing = { startedAt: 1764600000000.03125, finishedAt: 1764600000003.5 };

/** Sends the packed answer across a real port, as the step channel does, and reads it back. */
async function overThePort(result: StepBatchResult): Promise<StepBatchResult> {
  return unpackBatch(await acrossAPort(packBatch(result.outcomes, 0, result.outcomes.length, timing)));
}

const lent: ConsumeStepResult = {
  skipped: false,
  state: new Map([['words', 3]]),
  results: [
    { seq: 7, json: '{"text":"héllo ✓"}', takenAt: 1764600000000.25, doneAt: 1764600000000.75 },
    { seq: 8, json: 'null', takenAt: 1764600000001.25, doneAt: 1764600000001.5 },
  ],
  threadId: 4,
  resultLog: { segment: 1, bytes: 4096, openedAt: 1764599999000.5, windowFrom: 1 },
  readMark: { consumed: 8, segment: 9, offset: 12, left: [1, 5] },
};

const produced: ProduceStepResult = {
  skipped: false,
  state: { n: 8, at: new Date(0), big: 2n ** 70n },
  delayMs: 1500,
  done: false,
  chunks: [
    { seq: 7, producedAt: 1764600000000.125, sizeBytes: 40 },
    { seq: 8, producedAt: 1764600000001.125, sizeBytes: 0 },
  ],
  calls: 3,
  threadId: 4,
  timing: { startedAt: 1764600000000.0625, finishedAt: 1764600000002.5 },
  chunkLog: { segment: 1, bytes: 8192, committed: 8 },
  consumed: lent,
};

describe('a step batch answer packed for the trip back to the main thread', () => {
  it('comes back as the same objects: every kind of outcome, every optional part present or not', async () => {
    const result: StepBatchResult = {
      outcomes: [
        { ok: produced },
        null,
        // A producer with no consumer lent, nothing written, no log end, no timing.
        { ok: { skipped: true, state: undefined, delayMs: 0, done: true, chunks: [], calls: 0, threadId: 2 } },
        // A consumer of its own, with timing and no read mark.
        {
          ok: {
            skipped: false,
            state: [1, 'two'],
            results: [{ seq: 3, json: '{}', takenAt: 5, doneAt: 6 }],
            threadId: 2,
            timing: { startedAt: 4, finishedAt: 7 },
            resultLog: { segment: 1, bytes: 20, openedAt: 1, windowFrom: 1 },
          },
        },
        // Outcomes with an error, and one that threw, travel as themselves.
        { ok: { ...produced, error: { name: 'TypeError', message: 'bad', stack: 'at step' } } },
        { ok: { ...produced, consumed: { ...lent, error: { name: 'Error', message: 'consumer failed' } } } },
        { thrown: { name: 'Error', message: 'the module did not load' } },
        { ok: { skipped: false, state: null, results: [], threadId: 3 } },
      ],
    };
    assert.deepStrictEqual(await overThePort(result), { ...result, timing });
  });

  it('an empty batch, and a batch of only taken-back steps', async () => {
    assert.deepStrictEqual(await overThePort({ outcomes: [] }), { outcomes: [], timing });
    assert.deepStrictEqual(await overThePort({ outcomes: [null, null] }), { outcomes: [null, null], timing });
  });

  it('in parts: each carries the entries it names, null for the others; only the last has the timing', async () => {
    const outcomes: StepBatchResult['outcomes'] = [{ ok: produced }, { ok: lent }, null, { thrown: { name: 'Error', message: 'x' } }];
    const first = unpackBatch(await acrossAPort(packBatch(outcomes, 0, 2, null)));
    assert.deepStrictEqual(first, { outcomes: [{ ok: produced }, { ok: lent }, null, null], partial: true });
    const last = unpackBatch(await acrossAPort(packBatch(outcomes, 2, 4, timing)));
    assert.deepStrictEqual(last, { outcomes: [null, null, null, outcomes[3]], timing });
  });

  it('refuses numbers it cannot read rather than inventing outcomes', () => {
    assert.throws(() => unpackBatch([Float64Array.from([0, 0, 1, 0, 1, 1, 9]), [], []]), /unknown outcome tag 9/);
  });
});
