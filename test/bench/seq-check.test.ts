import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeqCheck } from '../../bench/seq-check.js';

const fed = (seqs: number[], after = 0) => {
  const c = new SeqCheck(after);
  for (const s of seqs) c.receive(s);
  return c;
};

describe('bench stream check (SeqCheck)', () => {
  it('finds nothing wrong with 1, 2, 3… in order', () => {
    const c = fed([1, 2, 3, 4]);
    assert.deepEqual([c.received, c.highest, c.contiguous, c.gaps, c.duplicates, c.reorders], [4, 4, 4, 0, 0, 0]);
  });

  it('counts every skipped seq as a gap, however far the stream jumps', () => {
    const c = fed([1, 2, 6, 7, 1_000_007]);
    assert.equal(c.gaps, 3 + 999_999);
    assert.equal(c.contiguous, 2);
    assert.equal(c.highest, 1_000_007);
  });

  it('counts a seq received twice as a duplicate, not a gap', () => {
    const c = fed([1, 2, 3, 2, 3, 4]);
    assert.deepEqual([c.gaps, c.duplicates, c.reorders, c.contiguous], [0, 2, 0, 4]);
  });

  it('counts a late seq that fills a gap as a reorder, and the gap as closed', () => {
    const c = fed([1, 3, 5, 2, 4]);
    assert.deepEqual([c.gaps, c.duplicates, c.reorders, c.contiguous], [0, 0, 2, 5]);
  });

  it('splits a gap that a late seq lands in the middle of', () => {
    const c = fed([1, 10, 5]);
    assert.equal(c.gaps, 7); // 2–4 and 6–9
    assert.equal(c.contiguous, 1);
    c.receive(5);
    assert.equal(c.duplicates, 1);
  });

  it('continues a resumed stream from the seq it resumed after', () => {
    const c = fed([1, 2, 3]);
    const resumed = c.contiguous;
    for (const s of [4, 5]) c.receive(s);
    assert.deepEqual([resumed, c.gaps, c.duplicates], [3, 0, 0]);
    const replayedTwice = fed([3, 4], 3);
    assert.deepEqual([replayedTwice.duplicates, replayedTwice.gaps, replayedTwice.highest], [1, 0, 4]);
  });
});
