/**
 * The step producers' load (pool/step-load.ts): steps a second over the sample just closed, and
 * what it allows residents — welcome at or under the limit once it stayed there for the hold,
 * crowded past it by a quarter, neither between.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CROWDED_ABOVE, StepLoad } from '../../src/pool/step-load.js';

function takeSteps(load: StepLoad, n: number): void {
  for (let i = 0; i < n; i++) load.taken();
}

describe('the step producers\' load', () => {
  it('is read only when a sample closes, as steps a second over that sample', () => {
    const load = new StepLoad(1000, 0, 0);
    takeSteps(load, 900);
    assert.equal(load.perS, 0, 'nothing is read before the sample closes');
    load.close(500);
    assert.equal(load.perS, 1800);
    load.close(1000);
    assert.equal(load.perS, 0, 'the next sample counts only its own steps');
  });

  it('welcomes residents at or under the limit, crowds them out past it by a quarter, neither between', () => {
    const load = new StepLoad(1000, 0, 0);
    assert.deepEqual([load.welcome, load.crowded], [true, false], 'an idle service welcomes residents');
    takeSteps(load, 500);
    load.close(500);
    assert.deepEqual([load.perS, load.welcome, load.crowded], [1000, true, false], 'at the limit');
    takeSteps(load, 501);
    load.close(1000);
    assert.deepEqual([load.welcome, load.crowded], [false, false], 'just past the limit: no new resident, none sent back');
    takeSteps(load, 500 * CROWDED_ABOVE);
    load.close(1500);
    assert.deepEqual([load.welcome, load.crowded], [false, false], 'at a quarter past: still between');
    takeSteps(load, 500 * CROWDED_ABOVE + 1);
    load.close(2000);
    assert.deepEqual([load.welcome, load.crowded], [false, true], 'past it by more than a quarter: crowded');
    load.close(2500);
    assert.deepEqual([load.welcome, load.crowded], [true, false], 'the load gone, residents are welcome again');
  });

  it('welcomes residents again only once the load has stayed at or under the limit for the hold', () => {
    const load = new StepLoad(1000, 2000, 0);
    load.close(500);
    assert.equal(load.welcome, true, 'never above the limit: no hold');
    takeSteps(load, 501);
    load.close(1000);
    assert.equal(load.welcome, false, 'above the limit');
    for (const at of [1500, 2000, 2500]) {
      takeSteps(load, 100);
      load.close(at);
      assert.deepEqual([load.perS, load.welcome], [200, false], `under the limit at ${at} ms, but within the hold`);
    }
    takeSteps(load, 600);
    load.close(3000);
    assert.equal(load.welcome, false, 'above it again: the hold starts over');
    load.close(4500);
    assert.equal(load.welcome, false, '1.5 s under it');
    load.close(5000);
    assert.equal(load.welcome, true, '2 s under it: welcome');
  });

  it('without a limit, always welcomes and is never crowded', () => {
    const load = new StepLoad(Infinity, 0, 0);
    takeSteps(load, 1_000_000);
    load.close(1);
    assert.equal(load.perS, 1e9);
    assert.deepEqual([load.welcome, load.crowded], [true, false]);
  });

  it('ignores a close at the moment it began, so a rate is never divided by zero', () => {
    const load = new StepLoad(1000, 0, 100);
    takeSteps(load, 10);
    load.close(100);
    assert.equal(load.perS, 0);
    load.close(110);
    assert.equal(load.perS, 1000, 'the steps are counted in the next sample that closes');
  });
});
