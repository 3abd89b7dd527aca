import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

describe('a loop consumer that answers a chunk twice', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
  });
  after(() => server.close());

  for (const [readAgain, message] of [
    [false, /consumer of pipeline "emits-twice" failed: emit\(\) called twice for chunk 1; each chunk from next\(\) gets exactly one result/],
    [true, /consumer of pipeline "emits-twice" failed: chunk 1 was read after emit\(\) answered it/],
  ] as const) {
    it(`fails the session with a clear error${readAgain ? ' when it reads the chunk again after emit()' : ''}`, async () => {
      const client = await TestClient.open(server.wsUrl());
      await client.start({ pipeline: 'emits-twice', options: { readAgain } });
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'PIPELINE_FAILED');
      assert.match(err.message!, message);
      assert.doesNotMatch(err.message!, /ENOENT|\.chunk/);
      assert.equal(await client.waitClose(), 1011);
      assert.deepEqual(client.transcripts().map((t) => t.data), ['1'], 'the first answer was delivered');
    });
  }
});
