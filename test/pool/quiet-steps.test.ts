/**
 * Quiet resident steps (pool/quiet-steps.ts): what a step thread writes of a step that needs no
 * answer, and what the main thread reads back, through the same shared memory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG, FlagsSlab, QUIET } from '../../src/pool/flags.js';
import {
  QuietReader,
  QuietWriter,
  SAMPLE,
  ackAnswer,
  answerTaken,
  followsDelivered,
  jsonExact,
  markDelivered,
  quietDueAt,
  quietSlab,
  quietStep,
  quietTorn,
  resetQuiet,
  type QuietProgress,
} from '../../src/pool/quiet-steps.js';

const progress = (over: Partial<QuietProgress> = {}): QuietProgress => ({
  step: 1,
  nextSeq: 2,
  dueAt: 1000,
  steps: 1,
  chunks: 1,
  bytes: 10,
  results: 1,
  calls: 1,
  samples: 1,
  ...over,
});

function setup(stateBytes = 64, samples = 4) {
  const flags = new FlagsSlab(2);
  const { slot, flags: f } = flags.alloc()!;
  const slab = quietSlab(flags.capacity, { stateBytes, samples });
  return { f, slot, writer: new QuietWriter(slab), reader: new QuietReader(slab) };
}

/** Writes one quiet step with results whose samples are i, i + 0.1, …; counts the publishes. */
function writeStep(s: ReturnType<typeof setup>, p: QuietProgress, results: number) {
  let published = 0;
  s.writer.write(
    s.f,
    s.slot,
    p,
    results,
    (i, into, at) => {
      for (let k = 0; k < 5; k++) into[at + k] = p.samples - results + i + k / 10;
    },
    () => published++,
  );
  return published;
}

describe('quiet steps: what JSON carries exactly', () => {
  it('takes plain values, arrays and objects of them', () => {
    for (const v of [null, true, 0, 1.5, -3, 'text', [], [1, 'a', [null]], {}, { a: 1, b: { c: [true] } }, Object.create(null)]) {
      assert.equal(jsonExact(v), true, JSON.stringify(v));
    }
  });

  it('refuses what JSON would change or drop', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const v of [undefined, NaN, Infinity, -0, 10n, new Map(), new Date(0), new Uint8Array(2), { a: undefined }, [undefined], () => 1, Symbol('s'), cyclic]) {
      assert.equal(jsonExact(v), false, String(typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' ? 'symbol' : v instanceof Object ? v.constructor?.name : v));
    }
  });
});

describe('quiet steps through shared memory', () => {
  it('the main thread reads back the numbers, samples and both states of the last step', () => {
    const s = setup();
    assert.equal(s.writer.stage({ n: 7, words: ['a', 'b'] }, undefined), true);
    assert.equal(writeStep(s, progress({ step: 3, nextSeq: 9, samples: 2, results: 2, chunks: 2 }), 2), 1, 'published once');
    const out = progress({ step: 0 });
    assert.equal(s.reader.progress(s.f, out), true);
    assert.deepEqual(out, progress({ step: 3, nextSeq: 9, samples: 2, results: 2, chunks: 2 }));
    assert.equal(quietStep(s.f), 3);
    assert.equal(quietDueAt(s.f), 1000);
    const into = new Float64Array(10);
    s.reader.takeSamples(s.f, s.slot, 0, 2, into);
    assert.deepEqual(Array.from(into), [0, 0.1, 0.2, 0.3, 0.4, 1, 1.1, 1.2, 1.3, 1.4]);
    assert.deepEqual(s.reader.states(s.f, s.slot), { state: { n: 7, words: ['a', 'b'] }, consumerState: undefined });
  });

  it('a top-level undefined and a string both come back as they were', () => {
    const s = setup();
    assert.equal(s.writer.stage(undefined, 'x,y]'), true);
    writeStep(s, progress(), 1);
    assert.deepEqual(s.reader.states(s.f, s.slot), { state: undefined, consumerState: 'x,y]' });
  });

  it('states JSON cannot carry, or longer than STEP_QUIET_STATE_BYTES, are not staged', () => {
    const s = setup(16);
    assert.equal(s.writer.stage(new Map(), 1), false);
    assert.equal(s.writer.stage(1, NaN), false);
    assert.equal(s.writer.stage('a'.repeat(20), 1), false);
    assert.equal(s.writer.stage('é'.repeat(7), 1), false, 'counted in bytes, not characters');
    assert.equal(s.writer.stage(12345, 'ok'), true);
  });

  it('the ring has room only for samples the main thread took', () => {
    const s = setup(64, 4);
    assert.equal(s.writer.hasRoom(s.f, 0, 4), true);
    assert.equal(s.writer.hasRoom(s.f, 3, 2), false);
    s.writer.stage(1, 1);
    writeStep(s, progress({ samples: 3, results: 3 }), 3);
    s.reader.takeSamples(s.f, s.slot, 0, 3, new Float64Array(15));
    assert.equal(s.writer.hasRoom(s.f, 3, 4), true, 'all three taken: four fit again');
    // Written past the ring's end, samples wrap and come back in order.
    writeStep(s, progress({ step: 2, samples: 6, results: 6 }), 3);
    const into = new Float64Array(15);
    s.reader.takeSamples(s.f, s.slot, 3, 6, into);
    assert.deepEqual([0, 1, 2].map((i) => into[i * 5 + SAMPLE.LATENCY]), [3, 4, 5]);
  });

  it('a write the thread did not finish is torn; a new residency starts clean', () => {
    const s = setup();
    s.writer.stage(1, 1);
    assert.throws(() =>
      s.writer.write(s.f, s.slot, progress(), 1, () => {}, () => {
        throw new Error('the thread ended here');
      }),
    );
    assert.equal(quietTorn(s.f), true);
    resetQuiet(s.f);
    assert.equal(quietTorn(s.f), false);
    assert.equal(quietStep(s.f), 0);
    assert.equal(s.reader.progress(s.f, progress()), false, 'nothing written in this residency');
  });

  it('a reader gives up while a write is under way, and reads the numbers once it is done', () => {
    const s = setup();
    s.writer.stage(1, 1);
    writeStep(s, progress({ step: 1 }), 1);
    // The lock odd, as held by a thread in the middle of a write (or preempted there).
    Atomics.add(s.f.ints, FLAG.QUIET_VERSION, 1);
    s.f.floats[QUIET.NEXT_SEQ] = 999;
    const out = progress({ step: 0, nextSeq: 0 });
    assert.equal(s.reader.progress(s.f, out), false, 'no numbers from a write under way');
    Atomics.add(s.f.ints, FLAG.QUIET_VERSION, 1);
    assert.equal(s.reader.progress(s.f, out), true);
    assert.equal(out.nextSeq, 999);
  });

  it("an answered step's next waits until the main thread took it in; a quiet step follows what was delivered", () => {
    const s = setup();
    assert.equal(answerTaken(s.f, 2), false);
    ackAnswer(s.f, 2);
    assert.equal(answerTaken(s.f, 2), true);
    assert.equal(followsDelivered(s.f, 5, -1), false, 'results 1–4 not delivered yet');
    markDelivered(s.f, 4);
    assert.equal(followsDelivered(s.f, 5, -1), true);
    assert.equal(followsDelivered(s.f, 8, 7), true, 'after quiet steps through 7');
    assert.equal(followsDelivered(s.f, 9, 7), false);
  });
});
