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
});
