import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG, FlagsSlab, claimResident, endResidency, isStopRequested, nowMs, requestStop, residentRunning, setPaused, unclaimResident, waitForSpoolRoom, waitUntil, waitWhilePaused } from '../../src/pool/flags.js';
import { publishConsumed } from '../../src/spool/progress.js';

type Slot = NonNullable<ReturnType<FlagsSlab['alloc']>>;

describe('waits on the session flags', () => {
  const slab = new FlagsSlab(4);

  /**
   * `change` runs inside the wait's own check, after the wait read FLAG.WAKE and before it sleeps:
   * the window in which a stop was once missed (the wait slept to its deadline).
   */
  function changeBetweenCheckAndSleep(change: (slot: Slot) => void, ready: (flags: Slot['flags']) => boolean, before: (slot: Slot) => void = () => {}) {
    const slot = slab.alloc()!;
    before(slot);
    let checks = 0;
    const began = nowMs();
    const ok = waitUntil(
      slot.flags,
      () => {
        checks++;
        if (checks === 1) {
          change(slot);
          return false;
        }
        return ready(slot.flags);
      },
      began + 3000,
    );
    const waited = nowMs() - began;
    slab.free(slot.slot);
    return { ok, checks, waited };
  }

  it('a stop that lands between the check and the sleep ends the wait at once', () => {
    const r = changeBetweenCheckAndSleep(({ flags }) => requestStop(flags), isStopRequested);
    assert.equal(r.ok, true);
    assert.equal(r.checks, 2, 'woken once, by the stop');
    assert.ok(r.waited < 2000, `did not sleep to its deadline (${r.waited.toFixed(0)} ms)`);
  });

  it('a pause cleared, or a chunk consumed, between the check and the sleep ends the wait at once', () => {
    const paused = changeBetweenCheckAndSleep(
      ({ flags }) => setPaused(flags, FLAG.PAUSE_CONSUMER, false),
      (flags) => Atomics.load(flags.ints, FLAG.PAUSE_CONSUMER) === 0,
      ({ flags }) => setPaused(flags, FLAG.PAUSE_CONSUMER, true),
    );
    assert.equal(paused.checks, 2);
    assert.ok(paused.waited < 2000);
    const consumed = changeBetweenCheckAndSleep(
      ({ flags }) => publishConsumed(flags, { consumed: 5, segment: 1, offset: 0, left: [] }),
      (flags) => Atomics.load(flags.ints, FLAG.CONSUMED) === 5,
    );
    assert.equal(consumed.checks, 2);
    assert.ok(consumed.waited < 2000);
  });

  it('waitWhilePaused and waitForSpoolRoom return at once when they need not wait, or once stopped', () => {
    const { flags } = slab.alloc()!;
    waitWhilePaused(flags, FLAG.PAUSE_PRODUCER);
    waitForSpoolRoom(flags, 1, 4);
    setPaused(flags, FLAG.PAUSE_PRODUCER, true);
    requestStop(flags);
    waitWhilePaused(flags, FLAG.PAUSE_PRODUCER);
    waitForSpoolRoom(flags, 100, 4);
    assert.equal(isStopRequested(flags), true);
  });
});

describe("a resident's token (FLAG.RESIDENT, pool/residents.ts)", () => {
  const slab = new FlagsSlab(2);

  it('while a step runs, neither side can end the residency; between steps, exactly one can', () => {
    const { flags } = slab.alloc()!;
    Atomics.store(flags.ints, FLAG.RESIDENT, 7);
    assert.equal(claimResident(flags, 7), true, 'the thread claims its step');
    assert.equal(residentRunning(flags, 7), true);
    assert.equal(endResidency(flags, 7), false, 'no take-back while the step runs');
    assert.equal(claimResident(flags, 7), false, 'no second claim while one runs');
    unclaimResident(flags, 7);
    assert.equal(residentRunning(flags, 7), false);
    assert.equal(endResidency(flags, 7), true, 'the first to end it between steps wins');
    assert.equal(endResidency(flags, 7), false, 'and the other loses');
    assert.equal(claimResident(flags, 7), false, 'no step of a residency that ended');
  });

  it('a token of an earlier residency claims nothing of the next one', () => {
    const { flags } = slab.alloc()!;
    Atomics.store(flags.ints, FLAG.RESIDENT, 8);
    assert.equal(claimResident(flags, 3), false);
    assert.equal(endResidency(flags, 3), false);
    assert.equal(Atomics.load(flags.ints, FLAG.RESIDENT), 8);
  });
});
