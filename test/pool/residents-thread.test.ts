/**
 * How a step thread groups its residents' waits (pool/residents-thread.ts, ResidentGrouping):
 * the slack it allows a wait, from how many residents fall due per ms, and the boundary the wait
 * then ends on (sessions/timer-wheel.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NO_GROUPING, groupSlackMs, type ResidentGrouping } from '../../src/pool/residents-thread.js';
import { waitEnd, waitGranularity } from '../../src/sessions/timer-wheel.js';
import { loadConfig } from '../../src/config.js';

const TICK_MS = 5;
/** The service's defaults (config.ts: STEP_RESIDENT_GROUP_STEPS, STEP_RESIDENT_SLACK_PERCENT, STEP_TIMER_MAX_SLACK_MS). */
const DEFAULTS: ResidentGrouping = loadConfig({}).residentGrouping;

describe('grouping resident waits (STEP_RESIDENT_GROUP_STEPS)', () => {
  it('has the defaults these cases assume', () => {
    assert.deepEqual(DEFAULTS, { steps: 16, slackPercent: 3, maxSlackMs: 40 });
  });

  it('coarsens the waits of a sparse thread until a group holds the steps wanted, within the cap', () => {
    // Steady: 1,000 residents every 1.5 s, 0.67 a ms: 3.3 to a 5 ms tick, 6.7 to 10 ms, 13 to 20 ms, 27 to 40 ms.
    assert.equal(groupSlackMs(1000 / 1500, TICK_MS, DEFAULTS), 40);
    // 1.2 a ms: 24 to 20 ms is enough.
    assert.equal(groupSlackMs(1.2, TICK_MS, DEFAULTS), 20);
    // A handful of residents: as coarse as the cap allows, never beyond.
    assert.equal(groupSlackMs(0.001, TICK_MS, DEFAULTS), 40);
    assert.equal(groupSlackMs(0.001, TICK_MS, { ...DEFAULTS, maxSlackMs: 15 }), 10);
  });

  it('leaves a busy thread on the tick: its groups are full already', () => {
    // The crowd: 10,000 residents a second on one thread, 50 to a tick.
    assert.equal(groupSlackMs(10, TICK_MS, DEFAULTS), 0);
    assert.equal(groupSlackMs(16 / TICK_MS, TICK_MS, DEFAULTS), 0);
  });

  it('is off with 0 steps wanted, or no slack allowed', () => {
    assert.equal(groupSlackMs(0.001, TICK_MS, NO_GROUPING), 0);
    assert.equal(groupSlackMs(0.001, TICK_MS, { ...DEFAULTS, steps: 0 }), 0);
    assert.equal(groupSlackMs(0.001, TICK_MS, { ...DEFAULTS, maxSlackMs: 9 }), 0);
  });

  it('never lets a short wait end later than its share of slack', () => {
    const slack = groupSlackMs(0.01, TICK_MS, DEFAULTS);
    const g = (delayMs: number) => waitGranularity(delayMs, { tickMs: TICK_MS, slackPercent: DEFAULTS.slackPercent, maxSlackMs: slack });
    // 3 % of a 1.5 s wait is 45 ms: the cap's 40 ms boundary.
    assert.equal(g(1500), 40);
    // 3 % of a 1 s wait is 30 ms: a 20 ms boundary.
    assert.equal(g(1000), 20);
    // 3 % of 100 ms is 3 ms: the tick.
    assert.equal(g(100), TICK_MS);
    // A wait never ends early, and never a granularity late.
    for (const due of [1000, 1001, 1039, 1040.5]) {
      const end = waitEnd(due, g(1500));
      assert.ok(end >= due && end - due < 40, `due ${due} ends at ${end}`);
      assert.equal(end % 40, 0);
    }
  });
});
