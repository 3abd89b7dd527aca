import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { TallyCounter, TallyHistogram } from '../../src/metrics/tally.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];

/** The exposition lines of a registry, sorted, so two registries can be compared line by line. */
async function lines(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter(Boolean).sort();
}

describe('tallied metrics', () => {
  it("expose exactly what prom-client's own counter and histogram expose for the same events", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new TallyCounter(ours, 'x_total', 'events', 'pipeline');
    const histogram = new TallyHistogram(ours, 'x_seconds', 'latency', BOUNDS, 'pipeline');
    const refCounter = new Counter({ name: 'x_total', help: 'events', labelNames: ['pipeline'], registers: [theirs] });
    const refHistogram = new Histogram({ name: 'x_seconds', help: 'latency', labelNames: ['pipeline'], buckets: BOUNDS, registers: [theirs] });
    counter.zero('idle');
    refCounter.inc({ pipeline: 'idle' }, 0);
    histogram.zero('idle');
    refHistogram.zero({ pipeline: 'idle' });
    // Values on the bounds, between them, beyond the last, and zero.
    const values = [0, 0.001, 0.0005, 0.01, 0.05, 0.1, 0.999, 1, 2.5, 30];
    for (const [i, v] of values.entries()) {
      const pipeline = i % 3 === 0 ? 'demo' : 'transcribe';
      counter.add(pipeline, i + 1);
      refCounter.inc({ pipeline }, i + 1);
      histogram.observe(pipeline, v);
      refHistogram.observe({ pipeline }, v);
    }
    assert.deepEqual(await lines(ours), await lines(theirs));
    // A second scrape after more events: counts carry on from the first.
    counter.add('demo', 5);
    refCounter.inc({ pipeline: 'demo' }, 5);
    histogram.observe('demo', 0.2);
    refHistogram.observe({ pipeline: 'demo' }, 0.2);
    assert.deepEqual(await lines(ours), await lines(theirs));
  });

  it('a histogram with several labels exposes what prom-client exposes for the same events', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const histogram = new TallyHistogram(ours, 'z_seconds', 'wait', BOUNDS, ['side', 'shape']);
    const ref = new Histogram({ name: 'z_seconds', help: 'wait', labelNames: ['side', 'shape'], buckets: BOUNDS, registers: [theirs] });
    const keys = [
      { side: 'producer', shape: 'step' },
      { side: 'consumer', shape: 'step' },
      { side: 'consumer', shape: 'loop' },
    ].map((labels) => {
      ref.zero(labels);
      return { labels, key: histogram.series(labels.side, labels.shape) };
    });
    for (const [i, v] of [0, 0.002, 0.02, 0.2, 2, 0.0001].entries()) {
      const { labels, key } = keys[i % 2]!;
      histogram.observe(key, v);
      ref.observe(labels, v);
    }
    assert.deepEqual(await lines(ours), await lines(theirs));
  });

  it('leaves out a value that is not a finite number instead of poisoning the sum', async () => {
    const registry = new Registry();
    const histogram = new TallyHistogram(registry, 'y_seconds', 'latency', BOUNDS, 'pipeline');
    histogram.observe('demo', Number.NaN);
    histogram.observe('demo', 0.5);
    const text = await registry.metrics();
    assert.match(text, /^y_seconds_count\{pipeline="demo"\} 1$/m);
    assert.match(text, /^y_seconds_sum\{pipeline="demo"\} 0.5$/m);
  });
});
