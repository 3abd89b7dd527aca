import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { TimerWheel, waitGranularity } from '../../src/sessions/timer-wheel.js';
import { eventually } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Node timers (timeouts and intervals) made, and how many times one fired, while `fn` runs. */
async function timersUsedBy(fn: () => Promise<void>): Promise<{ made: number; fired: number }> {
  const timers = new Set<number>();
  let fired = 0;
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') timers.add(id);
    },
    before(id) {
      if (timers.has(id)) fired++;
    },
  }).enable();
  try {
    await fn();
  } finally {
    hook.disable();
  }
  return { made: timers.size, fired };
}

describe('the timer wheel', () => {
  it('runs each wait once, in due order, never before its time, and skips cancelled ones', async () => {
    const wheel = new TimerWheel();
    const ran: Array<[string, number]> = [];
    /**
     * When each wait is due, as the wheel set it (its group's boundary, on performance.now()'s
     * clock): its delay from the moment schedule() read the clock.
     */
    const due: Record<string, number> = {};
    const at = (name: string) => () => ran.push([name, performance.now()]);
    const schedule = (name: string, delayMs: number) => {
      const timer = wheel.schedule(at(name), delayMs);
      due[name] = timer.due;
      return timer;
    };
    // A wait is due its delay after its own schedule() call: on a loaded machine the calls may be
    // far apart (a run on 2026-12-03 under heavy load scheduled b over 20 ms after c, so b was due
    // after c and rightly ran after it), so the order expected is that of the due times (a group's
    // waits in the order scheduled), which the delays make a, b, c when the calls come together.
    schedule('c', 30);
    schedule('a', 5);
    const cancelled = schedule('x', 10);
    schedule('b', 10);
    wheel.cancel(cancelled);
    await eventually(() => ran.length >= 3, 'a, b and c ran');
    await sleep(20);
    const byDue = ['c', 'a', 'b'].sort((p, q) => due[p]! - due[q]!);
    assert.deepEqual(ran.map(([n]) => n), byDue, 'each ran once, in the order they were due, and x not at all');
    for (const [name, at] of ran) assert.ok(at >= due[name]!, `${name} ran ${(due[name]! - at).toFixed(2)} ms before its time`);
    wheel.close();
  });

  it('re-arms for a wait earlier than the one it is armed for, and holds one timer for many waits', async () => {
    const wheel = new TimerWheel();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const ran: number[] = [];
    let firstDue = Infinity;
    for (let i = 0; i < 1000; i++) firstDue = Math.min(firstDue, wheel.schedule(() => ran.push(i), 40 + (i % 7)).due);
    const early = wheel.schedule(() => ran.push(-1), 1);
    const timersNow = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(timersNow - timersBefore, 1, 'one timer for 1,001 waits');
    await eventually(() => ran.length >= 1001, 'every wait ran');
    // Due first unless scheduling the 1,000 took the machine past the first one's due time (a
    // loaded run on 2026-12-03 did): the order is the due times', not the calls'.
    assert.equal(ran[0] === -1, early.due < firstDue, `the 1 ms wait (due ${early.due}) ran first exactly when due before the rest (${firstDue})`);
    assert.equal(ran.length, 1001);
    wheel.close();
  });

  it('gives a longer wait a coarser granularity, within its slack, in steps of the tick doubled', () => {
    const g = { tickMs: 5, slackPercent: 1, maxSlackMs: 40 };
    assert.equal(waitGranularity(0, g), 5);
    assert.equal(waitGranularity(100, g), 5, '1 % of 100 ms is under a tick');
    assert.equal(waitGranularity(1000, g), 10);
    assert.equal(waitGranularity(1500, g), 10, '15 ms allowed: the tick doubled once');
    assert.equal(waitGranularity(2000, g), 20);
    assert.equal(waitGranularity(60_000, g), 40, 'never more than STEP_TIMER_MAX_SLACK_MS');
    assert.equal(waitGranularity(60_000, { ...g, slackPercent: 0 }), 5, 'no slack: every wait on the tick');
  });

  it('ends a long wait on its coarser boundary and a short one on the tick, neither early', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 10, maxSlackMs: 40 });
    const t0 = performance.now();
    const ran: Array<[string, number]> = [];
    // 10 % of 300 ms allows 30 ms: the tick doubled twice, 20 ms.
    wheel.schedule(() => ran.push(['long', performance.now()]), 300);
    await sleep(100);
    const shortDue = performance.now() + 20;
    wheel.schedule(() => ran.push(['short', performance.now()]), 20);
    await sleep(350);
    wheel.close();
    const long = ran.find(([n]) => n === 'long')![1];
    const short = ran.find(([n]) => n === 'short')![1];
    assert.ok(long - t0 >= 300, `the long wait ended after ${long - t0} ms`);
    assert.ok(short >= shortDue, 'the short wait never ends early');
    // Its due time was rounded up to a 20 ms boundary of the clock the wheel reads.
    assert.equal(Math.ceil((t0 + 300) / 20) * 20 <= long, true);
  });

  it('drives a busy wheel with one interval, not a timer per group, and never runs a group early', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 0, maxSlackMs: 0 });
    const early: number[] = [];
    let ran = 0;
    // Something due in every tick for 300 ms, as with 1,000 sessions on a 1.5 s period.
    const { made, fired } = await timersUsedBy(async () => {
      const t0 = performance.now();
      for (let i = 0; i < 60; i++) {
        const timer = wheel.schedule(() => {
          ran++;
          // Before the boundary the wheel rounded its due time up to, not only before the wait's.
          if (performance.now() < timer.due) early.push(i);
        }, t0 + 5 * i - performance.now());
      }
      await new Promise<void>((resolve) => wheel.schedule(resolve, 320));
    });
    wheel.close();
    assert.equal(ran, 60);
    assert.deepEqual(early, [], 'no group ran before its due time');
    // The interval, the timeout for the far wait's last stretch, and the test's own awaits: a
    // timer per group (and a second one for each group the clock's rounding fired early) made 60–120.
    assert.ok(made <= 6, `${made} timers made for 60 groups`);
    // One firing a tick (the interval's phase may leave one empty now and then); a timer armed
    // for exactly the time left fired about twice a group.
    assert.ok(fired <= 80, `timers fired ${fired} times for 60 groups`);
  });

  it('wakes once a group, not once a tick, when groups are a few ticks apart', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 0, maxSlackMs: 0 });
    const early: number[] = [];
    let ran = 0;
    // 20 groups 10, 15, 10 and 20 ms apart (275 ms), as a hundred sessions or so on a 1.5 s period
    // fall due. An interval started for groups two ticks apart and kept through gaps of four
    // fired every tick: 52 times, with the wheel's earlier thresholds.
    const spacings = [10, 15, 10, 20];
    const { fired } = await timersUsedBy(async () => {
      const t0 = performance.now();
      let at = 0;
      for (let i = 0; i < 20; i++) {
        at += spacings[i % spacings.length]!;
        const timer = wheel.schedule(() => {
          ran++;
          if (performance.now() < timer.due) early.push(i);
        }, t0 + at - performance.now());
      }
      await new Promise<void>((resolve) => wheel.schedule(resolve, at + 30));
    });
    wheel.close();
    assert.equal(ran, 20);
    assert.deepEqual(early, [], 'no group ran before its due time');
    // A timeout a group, the test's own awaits, and a tick's interval now and then where a late
    // firing found the next group within a tick.
    assert.ok(fired <= 38, `timers fired ${fired} times for 21 groups two to four ticks apart`);
  });

  it('arms a lone far wait with one timeout, not a tick-long interval through the gap', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 0, maxSlackMs: 0 });
    let endedAt = 0;
    const t0 = performance.now();
    const { made, fired } = await timersUsedBy(() => new Promise<void>((resolve) => wheel.schedule(() => ((endedAt = performance.now()), resolve()), 200)));
    wheel.close();
    assert.ok(endedAt - t0 >= 200, `ended after ${endedAt - t0} ms`);
    // A timeout, and (if a starved loop fired it early) the interval for the last ticks.
    assert.ok(made <= 3 && fired <= 4, `${made} timers made and ${fired} firings for one wait (a tick's interval would fire 40 times)`);
  });

  it('gives an emptied group to a later boundary, running only that boundary\'s waits, each once', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 0, maxSlackMs: 0 });
    const ran: string[] = [];
    // Groups of 3, 5, 2, 1 and 4 waits one after another: each takes the array the one before it
    // emptied, bigger or smaller than it needs.
    for (const [g, size] of [3, 5, 2, 1, 4].entries()) {
      for (let i = 0; i < size; i++) wheel.schedule(() => ran.push(`${g}.${i}`), 10);
      await sleep(30);
      assert.deepEqual(ran.splice(0), Array.from({ length: size }, (_, i) => `${g}.${i}`), `group ${g}`);
    }
    // Several groups alive at once, made from spare ones, still run in due order.
    for (const [g, ms] of [40, 10, 25].entries()) for (let i = 0; i < 2; i++) wheel.schedule(() => ran.push(`${g}.${i}`), ms);
    await sleep(70);
    assert.deepEqual(ran, ['1.0', '1.1', '2.0', '2.1', '0.0', '0.1']);
    wheel.close();
  });

  it('runs a reused timer once, with the group it was last scheduled in', async () => {
    const wheel = new TimerWheel({ tickMs: 5, slackPercent: 0, maxSlackMs: 0 });
    const ran: Array<[string, number]> = [];
    const timer = wheel.schedule(() => ran.push(['first', performance.now()]), 20);
    // Cancelled and scheduled again while its first group still lists it: only the later one runs it.
    wheel.cancel(timer);
    const dueAgain = performance.now() + 60;
    const again = wheel.schedule(() => ran.push(['again', performance.now()]), 60, timer);
    assert.equal(again, timer, 'the same object waits again');
    // Waited for by what ran, not by a sleep of fixed length: on a loaded machine a 40 ms sleep
    // once woke after the 60 ms wait had rightly run (2026-12-03), and read that as the first
    // group running it. That group ran nothing if 'first' never appears.
    await eventually(() => ran.length > 0, 'the reused timer ran');
    await sleep(30);
    assert.deepEqual(ran.map(([n]) => n), ['again'], 'only the later group ran it, once');
    assert.ok(ran[0]![1] >= dueAgain, `ran ${(dueAgain - ran[0]![1]).toFixed(2)} ms before its time`);
    // Scheduled again without a cancel, in the same group, it still runs once.
    const twice: number[] = [];
    wheel.schedule(() => twice.push(1), 10, timer);
    wheel.schedule(() => twice.push(2), 10, timer);
    await eventually(() => twice.length > 0, 'the timer scheduled twice ran');
    await sleep(30);
    assert.deepEqual(twice, [2]);
    wheel.close();
  });
});
