import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { endedSession } from '../helpers/openapi.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

/** ctx.chunkReady(timeoutMs): a loop consumer asks whether next() would return a chunk at once. */
describe('ctx.chunkReady in a loop consumer', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
  });
  after(() => server.close());

  it('waits for a chunk still to come and says true; says false once its wait runs out first', async () => {
    const client = await TestClient.open(server.wsUrl());
    try {
      // Chunk 2 comes 300 ms after chunk 1, inside the consumer's 1 s wait; chunk 3 5 s after
      // chunk 2, long after the wait for it ran out.
      await client.start({ pipeline: 'chunk-ready', options: { pauseMs: 300, lateMs: 5000, waitMs: 1000 } });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
      assert.equal(stopped.reason, 'completed');
      assert.deepEqual(
        client.transcripts().map((t) => t.data),
        [
          { chunk: '1', ready: null },
          { chunk: '2', ready: true },
          { chunk: '3', ready: false },
        ],
      );
    } finally {
      client.terminate();
    }
  });

  it('ends its wait at once, false, when the session stops', async () => {
    const client = await TestClient.open(server.wsUrl());
    try {
      // Chunk 2 would come after 10 minutes, and the wait is as long: only the STOP can end it.
      const id = await client.start({ pipeline: 'chunk-ready', options: { pauseMs: 600_000, waitMs: 600_000 } });
      // Chunk 1's result is out: the consumer is in chunkReady(10 min) now.
      await client.waitForTranscripts(1);
      client.send({ command: 'STOP' });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
      assert.equal(stopped.reason, 'client');
      const ended = await endedSession(server.httpUrl(''), id);
      assert.equal(ended.summary.forced, false, 'the loop returned by itself: no thread was terminated');
    } finally {
      client.terminate();
    }
  });
});
