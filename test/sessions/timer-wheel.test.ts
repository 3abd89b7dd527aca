import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel } from '../../src/sessions/timer-wheel.js';

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
});
