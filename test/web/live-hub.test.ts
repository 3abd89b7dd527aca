import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { LiveHub } from '../../src/web/live-hub.js';
import { quantileFromBuckets } from '../../src/web/throughput.js';

const limits = { ...loadConfig({}).live, viewerBufferBytes: 4096, intervalMs: 100 };
const sample = { at: 0, resultsPerSecond: 0, latencyP50Ms: null, latencyP99Ms: null, busyThreads: 0, queueDepth: 0 };
const pool = {
  threads: { total: 2, busy: 0, idle: 2, heldByLoops: 0 },
  queueDepth: 0,
  utilization: 0,
  tasksCompleted: 0,
  waitTimeMs: { mean: null, p50: null, p90: null, p99: null, max: null },
  runTimeMs: { mean: null, p50: null, p90: null, p99: null, max: null },
  minThreads: 2,
  maxThreads: 2,
  activeThreads: 1,
  heldThreads: 0,
  loopMaxThreads: 64,
};

/** A viewer whose network never takes anything: every write stays in its buffer. */
function stalledViewer(): Writable & { writes: number } {
  const w = new Writable({ highWaterMark: 1, write: () => {} }) as Writable & { writes: number };
  w.writes = 0;
  const write = w.write.bind(w);
  w.write = ((chunk: string) => {
    w.writes++;
    return write(chunk);
  }) as typeof w.write;
  return w;
}

describe('LiveHub bounds', () => {
  it('drops a viewer that leaves more than LIVE_VIEWER_BUFFER_BYTES unread, and holds nothing more for it', async () => {
    let n = 0;
    const hub = new LiveHub({
      limits,
      logger: createLogger('silent'),
      // Every snapshot differs, and is about 1 KiB: the stalled viewer's backlog grows each tick.
      snapshot: () => ({ at: Date.now(), pool, sample: { ...sample, resultsPerSecond: ++n }, sessions: [], totals: { live: 0, retained: n, shown: 0 } , padding: 'x'.repeat(1024) }) as never,
      history: () => [],
    });
    const viewer = stalledViewer();
    hub.subscribe(viewer, { role: 'read', canStop: false, clientTokenRequired: false });
    assert.equal(hub.viewers, 1);
    await new Promise<void>((resolve) => viewer.once('close', () => resolve()));
    assert.equal(hub.viewers, 0);
    assert.ok(viewer.destroyed);
    assert.ok(viewer.writableLength <= limits.viewerBufferBytes + 2048, `backlog ${viewer.writableLength} stayed near the bound`);
    hub.close();
  });

  it('refuses a viewer over LIVE_MAX_VIEWERS, and any after close', () => {
    const hub = new LiveHub({ limits: { ...limits, maxViewers: 1 }, logger: createLogger('silent'), snapshot: () => ({ at: 0, pool, sample, sessions: [], totals: { live: 0, retained: 0, shown: 0 } }), history: () => [] });
    hub.subscribe(stalledViewer(), { role: 'admin', canStop: true, clientTokenRequired: false });
    assert.throws(() => hub.subscribe(stalledViewer(), { role: 'admin', canStop: true, clientTokenRequired: false }), { code: 'TOO_MANY_VIEWERS' });
    hub.close();
    hub.close();
    assert.throws(() => hub.subscribe(stalledViewer(), { role: 'admin', canStop: true, clientTokenRequired: false }), { code: 'SHUTTING_DOWN' });
  });
});

describe('quantileFromBuckets', () => {
  const buckets = [
    { le: 0.001, count: 50 },
    { le: 0.01, count: 90 },
    { le: 0.1, count: 100 },
    { le: Infinity, count: 100 },
  ];
  it('interpolates inside the bucket the quantile falls in, as histogram_quantile does', () => {
    assert.equal(quantileFromBuckets(buckets, 0.5), 0.001);
    assert.ok(Math.abs(quantileFromBuckets(buckets, 0.7)! - 0.0055) < 1e-12);
    assert.ok(Math.abs(quantileFromBuckets(buckets, 0.99)! - 0.091) < 1e-12);
  });
  it('answers null with no observations, and the last finite bound past it', () => {
    assert.equal(quantileFromBuckets([{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }], 0.5), null);
    assert.equal(quantileFromBuckets([{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }], 0.99), 0.1);
  });
});
