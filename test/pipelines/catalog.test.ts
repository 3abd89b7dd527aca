import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { BROKEN_PIPELINES, FIXTURE_PIPELINES, startServer } from '../helpers/server.js';

describe('pipeline catalog', () => {
  it('loads user pipelines from PIPELINES_DIR next to the built-ins', async () => {
    const server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, DEFAULT_PIPELINE: 'finite' });
    try {
      const names = server.app.catalog.list().map((p) => p.name).sort();
      // Every fixture module is named after its file; all of them load beside the three built-ins.
      const fixtures = fs.readdirSync(FIXTURE_PIPELINES).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
      assert.ok(fixtures.includes('loop-loop') && fixtures.includes('finite'));
      assert.deepEqual(names, ['demo', 'tail', 'transcribe', ...fixtures].sort());
      assert.deepEqual(server.app.catalog.loadErrors, []);
      // DEFAULT_PIPELINE picks the pipeline START gets when it names none.
      const client = await TestClient.open(server.wsUrl());
      client.send({ command: 'START' });
      const started = await client.waitFor((m) => m.type === 'started', 'started');
      assert.equal(started.pipeline, 'finite');
      await client.waitFor((m) => m.type === 'stopped', 'stopped');
    } finally {
      await server.close();
    }
  });

  it('reports modules that fail to load instead of crashing, and still runs the good ones', async () => {
    const server = await startServer({ PIPELINES_DIR: BROKEN_PIPELINES });
    try {
      const errors = server.app.catalog.loadErrors.map((e) => ({ file: e.module.split('/').pop(), error: e.error }));
      assert.deepEqual(errors, [
        { file: 'misshapen.js', error: 'producer.shape must be "step" or "loop"' },
        { file: 'syntax.js', error: 'this module is broken on purpose' },
      ]);
      const client = await TestClient.open(server.wsUrl());
      const from = client.messages.length;
      client.send({ command: 'START', pipeline: 'syntax' });
      const err = await client.waitFor((m) => m.type === 'error', 'error', from);
      assert.equal(err.code, 'PIPELINE_UNAVAILABLE');
      assert.match(err.message!, /failed to load: this module is broken on purpose/);
      await client.start({ pipeline: 'fine' });
      await client.waitForTranscripts(2);
      client.send({ command: 'STOP' });
      await client.waitClose();
    } finally {
      await server.close();
    }
  });
});
