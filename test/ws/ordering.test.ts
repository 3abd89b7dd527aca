import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient, type ServerMessage } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

/** The replies a client got, as `type` or `type:code`, without transcripts. */
function replies(client: TestClient): string[] {
  return client.messages.filter((m) => m.type !== 'transcript').map((m: ServerMessage) => (m.code ? `${m.type}:${m.code}` : m.type));
}

describe('commands on one connection', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_MESSAGE_BYTES: '4096' });
  });
  after(() => server.close());

  it('answers START, START, STOP sent back to back in the order they were sent', async () => {
    const client = await TestClient.open(server.wsUrl());
    client.send({ command: 'START', options: { intervalMs: 10 } });
    client.send({ command: 'START', options: { intervalMs: 10 } });
    client.send({ command: 'STOP' });
    assert.equal(await client.waitClose(), 1000);
    assert.deepEqual(replies(client), ['started', 'error:ALREADY_STARTED', 'stopped']);
    const started = client.messages.find((m) => m.type === 'started')!;
    const stopped = client.messages.find((m) => m.type === 'stopped')!;
    assert.equal(stopped.session, started.session, 'STOP stopped the session the first START started');
    assert.equal(stopped.reason, 'client');
    assert.deepEqual(client.invalid, []);
  });

  it('answers a refused START before handling the START after it', async () => {
    const client = await TestClient.open(server.wsUrl());
    client.send({ command: 'START', options: { intervalMs: -1 } });
    client.send({ command: 'START', options: { intervalMs: 10 } });
    client.send({ command: 'STOP' });
    assert.equal(await client.waitClose(), 1000);
    assert.deepEqual(replies(client), ['error:BAD_OPTIONS', 'started', 'stopped']);
  });

  it('refuses a binary frame with BAD_MESSAGE when the session takes no client audio, and stays usable', async () => {
    const client = await TestClient.open(server.wsUrl());
    client.ws.send(Buffer.alloc(640));
    const before = await client.waitFor((m) => m.type === 'error', 'error for audio before START');
    assert.equal(before.code, 'BAD_MESSAGE');
    assert.match(before.message!, /no session runs on this connection.*client:/);
    await client.start({ options: { intervalMs: 10 } });
    const from = client.messages.length;
    client.ws.send(Buffer.alloc(640));
    const during = await client.waitFor((m) => m.type === 'error', 'error for audio to demo', from);
    assert.equal(during.code, 'BAD_MESSAGE');
    assert.match(during.message!, /pipeline "demo", which does not take client audio/);
    const n = client.transcripts().length;
    await client.waitForTranscripts(n + 2);
    client.send({ command: 'STOP' });
    assert.equal(await client.waitClose(), 1000);
    assert.deepEqual(replies(client), ['error:BAD_MESSAGE', 'started', 'error:BAD_MESSAGE', 'stopped']);
  });

  it('refuses a url the pipeline does not take with BAD_URL naming the ones it does', async () => {
    const client = await TestClient.open(server.wsUrl());
    client.send({ command: 'START', pipeline: 'tail', url: 'http://example.com/log' });
    const err = await client.waitFor((m) => m.type === 'error', 'BAD_URL');
    assert.equal(err.code, 'BAD_URL');
    assert.match(err.message!, /pipeline "tail" takes urls starting with "file:\/\/", got "http:\/\/example.com\/log"/);
  });

  for (const peer of ['answers the close', 'vanishes before answering the close'] as const) {
    it(`ends the session of a client that sends a frame over MAX_MESSAGE_BYTES and ${peer}`, async () => {
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ options: { intervalMs: 10 } });
      client.ws.send(Buffer.alloc(5000));
      if (peer === 'answers the close') assert.equal(await client.waitClose(), 1009);
      else client.terminate();
      // Not detached to wait for RESUME (RESUME_GRACE_MS is 60 s here): ended.
      await eventually(() => server.app.sessions.get(id) === undefined, 'the session ended');
      assert.equal(server.app.sessions.find(id)?.summary?.reason, 'disconnect');
    });
  }
});
