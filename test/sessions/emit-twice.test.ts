import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { LogCapture } from '../helpers/logs.js';
import { api } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

describe('a loop consumer that answers a chunk twice', () => {
  let server: TestServer;
  const logs = new LogCapture();
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, LOG_LEVEL: 'info' }, { logs });
  });
  after(() => server.close());

  for (const [readAgain, message] of [
    [false, /consumer of pipeline "emits-twice" failed: emit\(\) called twice for chunk 1\W+each chunk from next\(\) gets exactly one result/],
    [true, /consumer of pipeline "emits-twice" failed: emit\(\) called twice for chunk 1\W+each chunk from next\(\) gets exactly one result/],
  ] as const) {
    it(`fails the session with a clear error${readAgain ? ' also when it reads the chunk again before the second emit()' : ''}`, async () => {
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ pipeline: 'emits-twice', options: { readAgain } });
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'PIPELINE_FAILED');
      assert.match(err.message!, message);
      assert.doesNotMatch(err.message!, /ENOENT|\.chunk/);
      assert.equal(await client.waitClose(), 1011);
      assert.deepEqual(client.transcripts().map((t) => t.data), ['1'], 'the first answer was delivered');
      // Where it was thrown is kept for whoever runs the service: in the log and in inspect, not on the wire.
      assert.doesNotMatch(JSON.stringify(client.messages), /\bat .*\.js:\d+/);
      const [logged] = logs.matching({ session: id, msg: 'pipeline failed' });
      assert.match(String(logged?.stack), /emits-twice\.js:\d+/, 'the log has the stack through the pipeline module');
      let inspect: { consumer: { lastError: string; lastErrorStack: string | null } } | undefined;
      await eventually(async () => {
        const res = await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`, { headers: { connection: 'close' } });
        inspect = res.body;
        return res.status === 200 && inspect!.consumer.lastErrorStack !== null;
      }, 'inspect has the stack');
      assert.match(inspect!.consumer.lastErrorStack!, /emits-twice\.js:\d+/);
    });
  }
});
