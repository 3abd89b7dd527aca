import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { eventLoopMetrics, EVENT_LOOP_LAG_METRICS } from '../../src/metrics/event-loop.js';
import { processMetrics } from '../../src/metrics/process.js';
import { holdMainThread } from '../helpers/event-loop.js';
import { seriesValue } from '../helpers/exposition.js';

function gauge(text: string, name: string): number {
  const value = seriesValue(text, name);
  assert.ok(value !== undefined, `the scrape has ${name}`);
  return value;
}

describe('event-loop lag', () => {
  it('reports the delay beyond the sampling interval since the last scrape, in the scrape that follows it', async () => {
    const registry = new Registry();
    eventLoopMetrics(registry, 20);
    await sleep(200);
    await registry.metrics(); // the samples so far are spent
    // Node's histogram drops the interval a reset falls in: the block comes a few samples later.
    await sleep(100);
    holdMainThread(250);
    await sleep(100);
    const busy = await registry.metrics();
    assert.ok(gauge(busy, 'tandem_nodejs_eventloop_lag_max_seconds') >= 0.2, `a 250 ms block shows in the max: ${busy}`);
    await sleep(400);
    const idle = await registry.metrics();
    // prom-client reported each whole interval: never less than the resolution, 0.02.
    assert.ok(gauge(idle, 'tandem_nodejs_eventloop_lag_p50_seconds') < 0.02, `an idle loop's median lag is under the interval: ${idle}`);
    assert.ok(gauge(idle, 'tandem_nodejs_eventloop_lag_max_seconds') < 0.2, 'the block is gone from the next scrape');
  });

  it('reach a scrape of the process metrics once each, where prom-client had its own', async () => {
    const registry = new Registry();
    processMetrics(registry, 100);
    await sleep(250);
    const text = await registry.metrics();
    for (const name of EVENT_LOOP_LAG_METRICS) {
      assert.equal(text.split('\n').filter((l) => l.startsWith(`tandem_${name} `)).length, 1, `one sample of tandem_${name}`);
    }
  });
});
