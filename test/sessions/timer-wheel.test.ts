import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel, waitGranularity } from '../../src/sessions/timer-wheel.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the timer wheel', () => {
  it('runs each wait once, in due order, never before its time, and skips cancelled ones', async () => {
    const wheel = new TimerWheel();
    const ran: Array<[string, number]> = [];
    const t0 = performance.now();
    const at = (name: string) => () => ran.push([name, performance.now() - t0]);
    wheel.schedule(at('c'), 30);
    wheel.schedule(at('a'), 5);
    const cancelled = wheel.schedule(at('x'), 10);
    wheel.schedule(at('b'), 10);
    wheel.cancel(cancelled);
    await sleep(60);
    assert.deepEqual(ran.map(([n]) => n), ['a', 'b', 'c']);
    for (const [name, elapsed] of ran) assert.ok(elapsed >= { a: 5, b: 10, c: 30 }[name]!, `${name} ran at ${elapsed} ms`);
    wheel.close();
  });

  it('re-arms for a wait earlier than the one it is armed for, and holds one timer for many waits', async () => {
    const wheel = new TimerWheel();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const ran: number[] = [];
    for (let i = 0; i < 1000; i++) wheel.schedule(() => ran.push(i), 40 + (i % 7));
    wheel.schedule(() => ran.push(-1), 1);
    const timersNow = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(timersNow - timersBefore, 1, 'one timer for 1,001 waits');
    await sleep(100);
    assert.equal(ran[0], -1);
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
});
