import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagsSlab } from '../../src/pool/flags.js';
import { consumerLendable, noteConsumerRun, nextStepDue } from '../../src/sessions/pacing.js';

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

describe('when a step consumer may be lent to its producer', () => {
  const limits = { maxMsPerChunk: 2, slowRuns: 3, runMaxMs: 50 };
  const fresh = () => new FlagsSlab(1).alloc()!.flags;

  it('a new session\'s consumer is lent (assumed quick until it shows otherwise)', () => {
    assert.equal(consumerLendable(fresh()), true);
  });

  it('is judged slow only after slowRuns slow runs in a row, per chunk of its own calls', () => {
    const flags = fresh();
    noteConsumerRun(flags, 25, 10, limits); // 2.5 ms a chunk: slow
    noteConsumerRun(flags, 5, 1, limits);
    assert.equal(consumerLendable(flags), true, 'two slow runs are not enough');
    noteConsumerRun(flags, 3, 1, limits);
    assert.equal(consumerLendable(flags), false, 'the third in a row is');
    noteConsumerRun(flags, 300, 1, limits);
    assert.equal(consumerLendable(flags), false, 'and it stays slow while its runs are');
  });

  it('one quick run between slow ones starts the count again, and one quick run makes a slow consumer quick', () => {
    const flags = fresh();
    noteConsumerRun(flags, 50, 1, limits);
    noteConsumerRun(flags, 50, 1, limits);
    noteConsumerRun(flags, 20, 10, limits); // exactly 2 ms a chunk: quick
    noteConsumerRun(flags, 50, 1, limits);
    noteConsumerRun(flags, 50, 1, limits);
    assert.equal(consumerLendable(flags), true, 'a thread that lost its core now and then says nothing of its consumer');
    noteConsumerRun(flags, 50, 1, limits);
    assert.equal(consumerLendable(flags), false);
    noteConsumerRun(flags, 0.01, 1, limits);
    assert.equal(consumerLendable(flags), true);
  });

  it('a run that took no chunk says nothing', () => {
    const flags = fresh();
    for (let i = 0; i < 2; i++) noteConsumerRun(flags, 50, 1, limits);
    noteConsumerRun(flags, 0, 0, limits);
    noteConsumerRun(flags, 50, 1, limits);
    assert.equal(consumerLendable(flags), false);
  });

  it('with slowRuns 1, one slow run is enough', () => {
    const flags = fresh();
    noteConsumerRun(flags, 3, 1, { ...limits, slowRuns: 1 });
    assert.equal(consumerLendable(flags), false);
  });

  it('one run longer than runMaxMs in all judges it slow at once: a consumer slow every other run is not lent', () => {
    const flags = fresh();
    noteConsumerRun(flags, 0.1, 1, limits);
    noteConsumerRun(flags, 51, 1, limits);
    assert.equal(consumerLendable(flags), false, 'one 51 ms run');
    noteConsumerRun(flags, 0.1, 1, limits);
    assert.equal(consumerLendable(flags), true, 'quick again after a quick run');
    const burst = fresh();
    noteConsumerRun(burst, 60, 40, limits); // 1.5 ms a chunk, quick per chunk, but 60 ms in all
    assert.equal(consumerLendable(burst), false, 'a long run of quick chunks too');
  });
});
