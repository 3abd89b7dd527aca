import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

describe('pipeline shapes', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, POOL_IDLE_TIMEOUT_MS: '200', KEPT_SPOOLS_ALLOWED: 'true' });
  });
  after(() => server.close());

  it('runs a step producer and a step consumer as fast as the pool allows, in order', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ options: { intervalMs: 0 } });
    await client.waitForTranscripts(200);
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    const ts = client.transcripts();
    assertInOrder(ts);
    assert.equal(stopped.chunks, ts.length);
    ts.forEach((t, i) => assert.match(String(t.data), new RegExp(`^Data from producer #${i + 1} at `)));
    assert.deepEqual(client.invalid, []);
  });

  it('runs a loop producer and a loop consumer that keeps state across chunks, and completes when the producer returns', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'loop-loop', options: { count: 30, intervalMs: 1 } });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'completed');
    const ts = client.transcripts();
    assert.equal(ts.length, 30);
    assertInOrder(ts);
    ts.forEach((t, i) => assert.deepEqual(t.data, { n: i + 1, total: ((i + 1) * (i + 2)) / 2 }));
    assert.equal(stopped.chunks, 30);
    assert.equal(await client.waitClose(), 1000);
  });

  it('completes loop/loop sessions only after every result arrived, though results and returns travel apart', async () => {
    // A loop's results and its return come back on different channels; completing on the return
    // alone once lost the last results of some sessions. Several at once make the race likely.
    const clients = await Promise.all(Array.from({ length: 12 }, () => TestClient.open(server.wsUrl())));
    await Promise.all(clients.map((c) => c.start({ pipeline: 'loop-loop', options: { count: 300, intervalMs: 0 } })));
    for (const c of clients) {
      const stopped = await c.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
      assert.deepEqual([stopped.reason, stopped.chunks], ['completed', 300]);
      assert.equal(c.transcripts().length, 300);
      assertInOrder(c.transcripts());
    }
  });

  it('accounts the spool exactly when a loop consumer runs ahead of the chunk records', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'step-loop', options: { count: 40 } });
    const session = server.app.sessions.get(id)!;
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.deepEqual([stopped.reason, stopped.chunks], ['completed', 80]);
    assert.deepEqual([session.spooledChunks, session.spooledBytes], [0, 0], 'nothing counted as waiting once all was consumed');
  });

  it('feeds a loop consumer from a step producer that writes several chunks per step', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'step-loop' });
    const ts = await client.waitForTranscripts(10);
    client.send({ command: 'STOP' });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assertInOrder(client.transcripts());
    assert.deepEqual(
      ts.slice(0, 6).map((t) => t.data),
      ['A0', 'B0', 'A1', 'B1', 'A2', 'B2'],
    );
  });

  it('completes a session whose step producer says it is done, after every chunk is delivered', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'finite', options: { count: 7 } });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.deepEqual(
      { session: stopped.session, reason: stopped.reason, chunks: stopped.chunks },
      { session: id, reason: 'completed', chunks: 7 },
    );
    assert.deepEqual(client.transcripts().map((t) => t.data), [1, 2, 3, 4, 5, 6, 7].map((n) => `chunk ${n}`));
    await eventually(() => server.spools().length === 0, 'spool removed');
  });

  it('keeps the spool folder when START asks for it', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'finite', options: { count: 2 }, keep: true });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.ok(server.spools().includes(id), 'kept spool is still on disk');
  });
});
