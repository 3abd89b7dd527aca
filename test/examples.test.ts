import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from './helpers/client.js';
import { startServer, type TestServer } from './helpers/server.js';

// The pipelines README.md shows are these files; this proves they work as written.
const EXAMPLES = fileURLToPath(new URL('../../examples/pipelines/', import.meta.url));

describe('README example pipelines', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: EXAMPLES });
  });
  after(() => server.close());

  it('loads both examples with their shapes', () => {
    assert.deepEqual(server.app.catalog.loadErrors, []);
    const shapes = server.app.catalog.list().map((p) => [p.name, p.producerShape, p.consumerShape]);
    assert.deepEqual(shapes.filter(([n]) => n === 'sensor' || n === 'words'), [
      ['sensor', 'step', 'step'],
      ['words', 'loop', 'loop'],
    ]);
  });

  it('sensor (step shape) reports samples with a running average carried in state', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'sensor', options: { intervalMs: 10, unit: 'F' } });
    const ts = await client.waitForTranscripts(5);
    client.send({ command: 'STOP' });
    await client.waitClose();
    let sum = 0;
    ts.slice(0, 5).forEach((t, i) => {
      const d = t.data as { sample: number; value: number; average: number };
      assert.equal(d.sample, i + 1);
      sum += d.value;
      assert.ok(Math.abs(d.average - sum / (i + 1)) < 0.02, `average of ${i + 1} samples`);
      assert.ok(d.value > 60 && d.value < 80, 'Fahrenheit');
    });
  });

  it('words (loop shape) joins words split across chunks and completes when the text ends', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'words', options: { text: 'alpha beta gamma delta ', sliceBytes: 3, intervalMs: 0 } });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'completed');
    assertInOrder(client.transcripts());
    assert.deepEqual(client.transcripts().flatMap((t) => t.data as string[]), ['alpha', 'beta', 'gamma', 'delta']);
  });
});
