import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextStepDue } from '../../src/sessions/pacing.js';

describe('when a step producer\'s next step is due', () => {
  it('keeps the rate: a step answered on time or a little late is followed delayMs after it was due', () => {
    assert.equal(nextStepDue(1000, 1000, 1000, 50), 2000);
    assert.equal(nextStepDue(1000, 1012, 1000, 50), 2000, '12 ms of round trip come off the next wait');
    assert.equal(nextStepDue(1000, 1050, 1000, 50), 2000, 'lateness up to the slack is absorbed');
  });

  it('stretches the period by the lateness past the slack, so an overloaded service slows its producers', () => {
    assert.equal(nextStepDue(1000, 1300, 1000, 50), 2250);
    assert.equal(nextStepDue(1000, 3000, 1000, 50), 3950, 'never a burst of steps to catch up');
  });

  it('with no slack, waits delayMs from the answer, as a producer without a fixed rate', () => {
    assert.equal(nextStepDue(1000, 1040, 1000, 0), 2040);
  });

  it('a producer with nothing to wait for is due at once, never in the future', () => {
    assert.ok(nextStepDue(1000, 1020, 0, 50) <= 1020);
    assert.ok(nextStepDue(1000, 1020, -5, 50) <= 1020, 'a negative delay counts as none');
  });

  it('a step answered before it was due (a clock that stepped back) waits the whole delay from the answer', () => {
    assert.equal(nextStepDue(1000, 990, 1000, 50), 1990);
  });
});
