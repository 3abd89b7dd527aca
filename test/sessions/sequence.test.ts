import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionSequence } from '../../src/sessions/sequence.js';

const chunk = (seq: number, sizeBytes = 10) => ({ seq, producedAt: seq, sizeBytes });
const result = (seq: number) => ({ seq, json: `"r${seq}"`, takenAt: seq, doneAt: seq });
const drain = (s: SessionSequence) => {
  const out: number[] = [];
  for (let d = s.takeNext(); d; d = s.takeNext()) out.push(d.result.seq);
  return out;
};

describe('session sequence numbers', () => {
  it('delivers a result only once both records of its seq are in, strictly in order', () => {
    const s = new SessionSequence();
    s.addChunk(chunk(1));
    s.addChunk(chunk(2));
    assert.deepEqual(drain(s), []);
    s.addResult(result(1));
    assert.deepEqual(drain(s), [1]);
    s.addResult(result(2));
    s.addChunk(chunk(3));
    assert.deepEqual(drain(s), [2]);
    assert.equal(s.delivered, 2);
    assert.deepEqual(s.lag(), { chunks: 1, oldestAt: 3 });
  });

  it('accounts the spool exactly when results arrive before their chunk records', () => {
    const s = new SessionSequence();
    s.addChunk(chunk(1, 100));
    assert.deepEqual([s.spooledChunks, s.spooledBytes], [1, 100]);
    s.addResult(result(1));
    s.addResult(result(2)); // a loop consumer ran ahead of chunk 2's record
    s.addChunk(chunk(2, 50));
    assert.deepEqual([s.spooledChunks, s.spooledBytes], [0, 0]);
    assert.deepEqual(drain(s), [1, 2]);
  });

  it('is complete once everything the producer wrote was delivered', () => {
    const s = new SessionSequence();
    s.producerLastSeq = 2;
    s.addChunk(chunk(1));
    s.addResult(result(1));
    drain(s);
    assert.equal(s.complete, false);
    s.addChunk(chunk(2));
    s.addResult(result(2));
    drain(s);
    assert.equal(s.complete, true);
  });

  it('knows when a returned loop side has caught up', () => {
    const s = new SessionSequence();
    s.addChunk(chunk(1));
    assert.equal(s.caughtUp(2, null), false);
    s.addChunk(chunk(2));
    assert.equal(s.caughtUp(2, null), true);
    assert.equal(s.caughtUp(null, 1), false);
    s.addResult(result(1));
    assert.equal(s.caughtUp(2, 1), true);
  });

  it('keeps every record, in order, while its queues wrap around, grow and shrink', () => {
    const s = new SessionSequence();
    const delivered: number[] = [];
    let produced = 0;
    let consumed = 0;
    // Chunks run ahead of results by a distance that changes without the queue emptying in
    // between, so it grows while its head is mid-ring, wraps, shrinks once empty, and fills again.
    for (const ahead of [1, 3, 2, 5, 3, 17, 9, 200, 2, 70, 0, 6]) {
      for (let turn = 0; turn < 25; turn++) {
        s.addChunk(chunk(++produced, 10));
        while (produced - consumed > ahead) {
          s.addResult(result(++consumed));
          delivered.push(...drain(s));
        }
      }
      while (produced - consumed < ahead) s.addChunk(chunk(++produced, 10));
      assert.deepEqual([s.spooledChunks, s.spooledBytes], [produced - consumed, (produced - consumed) * 10]);
      assert.deepEqual(s.lag(), { chunks: produced - consumed, oldestAt: produced - consumed > 0 ? consumed + 1 : 0 });
    }
    while (consumed < produced) s.addResult(result(++consumed));
    delivered.push(...drain(s));
    // Results ahead of their chunks (a loop consumer): the chunks then count as already consumed.
    for (let k = 1; k <= 40; k++) s.addResult(result(produced + k));
    for (let k = 1; k <= 40; k++) s.addChunk(chunk(produced + k, 10));
    delivered.push(...drain(s));
    assert.deepEqual([s.spooledChunks, s.spooledBytes], [0, 0]);
    assert.deepEqual(delivered, Array.from({ length: produced + 40 }, (_, i) => i + 1));
    assert.equal(s.delivered, produced + 40);
  });

  it("counts a resident's quiet steps as written, consumed and delivered, only right after what was delivered", () => {
    const s = new SessionSequence();
    s.addChunk(chunk(1, 100));
    s.addResult(result(1));
    assert.deepEqual(drain(s), [1]);
    // Seqs 2–4, 30 bytes, delivered by the step thread: nothing queued, counts moved on.
    s.passQuiet(4, 3, 30);
    assert.deepEqual([s.produced, s.bytesProduced, s.consumed, s.lastResultSeq, s.delivered], [4, 130, 4, 4, 4]);
    assert.deepEqual([s.spooledChunks, s.spooledBytes], [0, 0]);
    assert.deepEqual(s.lag(), { chunks: 0, oldestAt: 0 });
    // The main thread's path goes on after them.
    s.addChunk(chunk(5));
    s.addResult(result(5));
    assert.deepEqual(drain(s), [5]);
    // Quiet steps that would skip seq 6, or pass a result still queued, are refused.
    assert.throws(() => s.passQuiet(8, 2, 20), /do not follow seq 5/);
    s.addChunk(chunk(6));
    assert.throws(() => s.passQuiet(7, 2, 20), /nothing queued/);
    assert.equal(s.delivered, 5, 'nothing counted by a refused pass');
  });
});
