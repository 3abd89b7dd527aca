import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const QUOTA = 20;
const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flow control: slow and detached clients', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      SEND_BUFFER_HIGH_BYTES: '65536',
      SPOOL_QUOTA_CHUNKS: String(QUOTA),
      RESUME_GRACE_MS: '20000',
    });
  });
  after(() => server.close());

  it('pauses the consumer of a client that stops reading, then the producer at the spool quota, and loses nothing', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'bulky', options: { chunkBytes: 65_536 } });
    socketOf(client).pause(); // the client stops reading: TCP fills, then the server's send buffer
    const session = server.app.sessions.get(id)!;
    // A producer's burst can reach the quota while the consumer still finishes its last task.
    await eventually(
      () => session.producer.state === 'paused' && session.consumer.state === 'paused',
      'producer paused at the quota and consumer paused by the full client',
      30_000,
    );
    assert.ok(session.spooledChunks >= QUOTA, `chunks wait on disk (${session.spooledChunks})`);
    const producedAtPause = session.produced;
    await sleep(300);
    assert.equal(session.produced, producedAtPause, 'a paused producer writes nothing');
    // The lag is visible to operators.
    const inspect = (await (await fetch(server.httpUrl(`/api/sessions/${id}`))).json()) as {
      lag: { chunks: number };
      spooled: { chunks: number };
      attached: boolean;
      producer: { state: string };
      consumer: { state: string };
    };
    assert.ok(inspect.lag.chunks >= QUOTA, `inspect shows lag ${inspect.lag.chunks}`);
    assert.deepEqual([inspect.producer.state, inspect.consumer.state], ['paused', 'paused']);
    assert.ok(inspect.spooled.chunks >= QUOTA);
    assert.equal(inspect.attached, true, 'a slow client is still attached');

    socketOf(client).resume();
    await client.waitForTranscripts(producedAtPause + 10, 30_000);
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
    const ts = client.transcripts();
    assertInOrder(ts);
    assert.equal(stopped.chunks, ts.length, 'everything sent was received');
    for (const t of ts) assert.equal(t.data, String(t.seq! % 10).repeat(65_536));
  });

  it('keeps a detached session alive for RESUME: its loop producer blocks at the quota, then resumes', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'loop-loop', options: { intervalMs: 0 } });
    const ts = await client.waitForTranscripts(5);
    const session = server.app.sessions.get(id)!;
    const secret = client.messages.find((m) => m.type === 'started')!.resume!;
    client.terminate();
    await eventually(() => !session.attached, 'session detached');
    const detached = (await (await fetch(server.httpUrl(`/api/sessions/${id}`))).json()) as { attached: boolean; state: string };
    assert.deepEqual([detached.attached, detached.state], [false, 'running'], 'inspect shows it waiting for RESUME');
    await eventually(() => session.sideInfo('producer').state === 'paused', 'loop producer blocked at the quota', 20_000);
    const produced = session.produced;
    await sleep(300);
    assert.ok(session.produced <= produced + 1, 'a blocked loop producer writes at most the chunk it held');
    // The quota bounds what waits on disk (results finished just before the drop was noticed wait in memory).
    const onDisk = fs.readdirSync(session.spoolDir).filter((f) => f.endsWith('.chunk')).length;
    assert.ok(onDisk <= QUOTA, `chunk files on disk bounded by the quota: ${onDisk}`);

    const last = client.transcripts().at(-1)!.seq!;
    assert.ok(last >= ts.length);
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    const resumed = await again.waitFor((m) => m.type === 'resumed', 'resumed');
    assert.deepEqual([resumed.session, resumed.after], [id, last]);
    await again.waitForTranscripts(QUOTA + 20, 20_000);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped');
    const seqs = [...client.transcripts().map((t) => t.seq!).filter((s) => s <= last), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'every result exactly once, in order');
    assert.equal(stopped.chunks, seqs.length);
    assert.deepEqual(again.invalid, []);
  });
});
