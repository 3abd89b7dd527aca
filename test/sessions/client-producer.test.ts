import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient, type ServerMessage } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const QUOTA_CHUNKS = 4;
/** Short enough that a paused socket outlives several heartbeats, long enough for a busy machine's pongs. */
const HEARTBEAT_MS = 1000;

/** A frame of `bytes` bytes whose first 32-bit word is `index`. */
function frame(index: number, bytes = 16 * 1024): Buffer {
  const b = Buffer.alloc(bytes, index & 0xff);
  b.writeUInt32LE(index, 0);
  return b;
}

interface Echo {
  bytes: number;
  first: number | null;
}

describe('client-fed sessions (url "client:")', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, SPOOL_QUOTA_CHUNKS: String(QUOTA_CHUNKS),
      MAX_MESSAGES_PER_SECOND: '10000',
      // A socket the server stopped reading cannot answer pings: it must not be taken for dead.
      HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
    });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  async function open(): Promise<TestClient> {
    const client = await TestClient.open(server.wsUrl());
    clients.push(client);
    return client;
  }

  function errorAfter(client: TestClient, from: number): Promise<ServerMessage> {
    return client.waitFor((m) => m.type === 'error', 'error', from);
  }

  it('appends every frame as the next chunk, in order, and stops reading the socket while the spool is full, dropping none', async () => {
    const gate = path.join(server.fileRoot, 'gate-backpressure');
    const client = await open();
    const id = await client.start({ pipeline: 'client-echo', url: 'client:', options: { gate } });
    const frames = 100;
    for (let i = 1; i <= frames; i++) client.ws.send(frame(i));
    client.send({ command: 'END' });
    // The consumer takes nothing yet: the spool fills to its quota and the producer (the socket) pauses.
    let produced = 0;
    await eventually(async () => {
      const r = await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`);
      produced = r.body.counters.produced;
      return r.body.producer.shape === 'client' && r.body.producer.state === 'paused';
    }, 'the client producer paused at the spool quota');
    assert.ok(produced >= QUOTA_CHUNKS && produced < frames / 2, `${produced} frames read while the spool holds ${QUOTA_CHUNKS}: the rest wait in TCP`);
    // Several heartbeats pass while the socket is not read; the connection stays.
    await new Promise((r) => setTimeout(r, 2.5 * HEARTBEAT_MS));
    assert.equal(client.closeCode, null, 'not dropped by the heartbeat while paused');
    fs.writeFileSync(gate, '');
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
    assert.equal(stopped.reason, 'completed');
    assert.equal(await client.waitClose(), 1000);
    const transcripts = client.transcripts();
    assertInOrder(transcripts);
    const echoes = transcripts.map((t) => t.data as Echo);
    assert.equal(echoes.length, frames + 1, 'one chunk per frame, and the end-of-audio mark');
    echoes.slice(0, frames).forEach((e, i) => assert.deepEqual(e, { bytes: 16 * 1024, first: i + 1 }));
    assert.deepEqual(echoes.at(-1), { bytes: 0, first: null }, 'END appended an empty chunk');
    assert.deepEqual(client.invalid, []);
  });

  it('refuses END on a session whose producer is not the client, naming why, and stays usable', async () => {
    const client = await open();
    client.send({ command: 'END' });
    const none = await errorAfter(client, 0);
    assert.equal(none.code, 'BAD_MESSAGE');
    assert.match(none.message!, /END refused: no session runs/);
    await client.start({ pipeline: 'demo', options: { intervalMs: 50 } });
    const from = client.messages.length;
    client.send({ command: 'END' });
    const err = await errorAfter(client, from);
    assert.equal(err.code, 'BAD_MESSAGE');
    assert.match(err.message!, /END refused: .* not started with url "client:"/);
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', from);
    assert.equal(stopped.reason, 'client');
  });

  it('refuses binary frames before started, after END, empty, or not a whole number of samples, and stays usable', async () => {
    const gate = path.join(server.fileRoot, 'gate-bad-frames');
    const client = await open();
    client.ws.send(frame(1, 8));
    const before = await errorAfter(client, 0);
    assert.equal(before.code, 'BAD_MESSAGE');
    assert.match(before.message!, /no session runs on this connection/);

    await client.start({ pipeline: 'client-echo', url: 'client:', options: { gate, sampleBytes: 4 } });
    const refused = async (data: Buffer, pattern: RegExp) => {
      const from = client.messages.length;
      client.ws.send(data);
      const err = await errorAfter(client, from);
      assert.equal(err.code, 'BAD_MESSAGE');
      assert.match(err.message!, pattern);
    };
    await refused(Buffer.alloc(6), /6 bytes is not a whole number of samples of 4 bytes/);
    await refused(Buffer.alloc(0), /empty .*END/);
    client.ws.send(frame(1, 8));
    client.send({ command: 'END' });
    await refused(frame(2, 8), /END was sent/);
    let from = client.messages.length;
    client.send({ command: 'END' });
    assert.match((await errorAfter(client, from)).message!, /END was already sent/);
    fs.writeFileSync(gate, '');
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'completed');
    assert.deepEqual(client.transcripts().map((t) => t.data), [{ bytes: 8, first: 1 }, { bytes: 0, first: null }], 'the refused frames never became chunks');

    const other = await open();
    await other.start({ pipeline: 'demo', options: { intervalMs: 50 } });
    from = other.messages.length;
    other.ws.send(frame(1, 8));
    const err = await errorAfter(other, from);
    assert.equal(err.code, 'BAD_MESSAGE');
    assert.match(err.message!, /does not take client audio here \(it was not started with url "client:"\)/);
    other.send({ command: 'STOP' });
    await other.waitFor((m) => m.type === 'stopped', 'stopped', from);
  });

  it('closes 1009 on a frame over MAX_MESSAGE_BYTES and ends the client-fed session', async () => {
    const client = await open();
    const id = await client.start({ pipeline: 'client-echo', url: 'client:' });
    client.ws.send(frame(1, server.config.maxMessageBytes + 1));
    assert.equal(await client.waitClose(), 1009);
    await eventually(async () => (await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`)).body.endReason === 'disconnect', 'the session ended');
  });

  it('refuses url "client:" for a pipeline that does not take client audio', async () => {
    const client = await open();
    client.send({ command: 'START', pipeline: 'demo', url: 'client:' });
    const err = await errorAfter(client, 0);
    assert.equal(err.code, 'BAD_URL');
    assert.match(err.message!, /pipeline "demo" does not take client audio: its urls do not list "client:"/);
  });

  it('tells a resuming client the last chunk of audio held, and continues the sequence with the frames it resends', async () => {
    const client = await open();
    const id = await client.start({ pipeline: 'client-echo', url: 'client:' });
    const resume = client.messages.find((m) => m.type === 'started')!.resume!;
    for (let i = 1; i <= 5; i++) client.ws.send(frame(i, 64));
    const got = await client.waitForTranscripts(5);
    client.terminate();
    await eventually(async () => (await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`)).body.attached === false, 'the server saw the drop');

    const again = await open();
    again.send({ command: 'RESUME', session: id, resume, after: got.length });
    const resumed = await again.waitFor((m) => m.type === 'resumed' || m.type === 'error', 'resumed');
    assert.equal(resumed.type, 'resumed', JSON.stringify(resumed));
    assert.equal(resumed.audio, 5, 'the five frames are held');
    for (let i = 6; i <= 8; i++) again.ws.send(frame(i, 64));
    again.send({ command: 'END' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
    assert.equal(stopped.reason, 'completed');
    const echoes = again.transcripts().map((t) => t.data as Echo);
    assert.deepEqual(again.transcripts().map((t) => t.seq), [6, 7, 8, 9]);
    assert.deepEqual(echoes.map((e) => e.first), [6, 7, 8, null]);
    assert.deepEqual(again.invalid, []);
  });
});
