import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimSlab, Claims } from '../../src/pool/claims.js';

describe('claim slots', () => {
  it('hands out every slot, slot 0 included, and none once all are in use', () => {
    const slab = new ClaimSlab(3);
    const got = [slab.alloc(), slab.alloc(), slab.alloc()];
    assert.deepEqual([...got].sort(), [0, 1, 2]);
    assert.equal(slab.alloc(), null);
    slab.free(1);
    assert.equal(slab.alloc(), 1);
  });

  it('claims entries in order through another view of the same buffer, and a slot freed starts again at 0', () => {
    const slab = new ClaimSlab(4);
    const thread = new Claims(slab.buffer); // what a pool thread makes from workerData
    const slot = slab.alloc()!;
    assert.equal(thread.claimNext(slot), 0);
    thread.setEntryStartedAt(slot, 1234.5);
    assert.equal(thread.claimNext(slot), 1);
    assert.equal(slab.view.claimed(slot), 2);
    assert.equal(slab.view.entryStartedAt(slot), 1234.5);
    // The neighbours are untouched.
    for (const other of [0, 1, 2, 3].filter((s) => s !== slot)) {
      assert.equal(slab.view.claimed(other), 0);
      assert.equal(slab.view.entryStartedAt(other), 0);
    }
    // Taking the rest back: the thread's next claim finds nothing left.
    assert.equal(slab.view.claimAll(slot, 5), 2);
    assert.ok(thread.claimNext(slot) >= 5);
    slab.free(slot);
    assert.equal(slab.view.claimed(slot), 0);
    assert.equal(slab.view.entryStartedAt(slot), 0);
  });
});
