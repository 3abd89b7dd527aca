import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

describe('WebSocket protocol', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('serves a client that sends exactly the seed messages on /live-transcription', async () => {
    const client = await TestClient.open(server.wsUrl('/live-transcription'));
    client.send('{"command": "START", "url": "rtsp://camera/stream"}');
    const started = await client.waitFor((m) => m.type === 'started', 'started');
    assert.equal(started.pipeline, 'demo');
    // The default demo interval is the seed's 1.5 s: wait for two results.
    const ts = await client.waitForTranscripts(2, 10_000);
    assertInOrder(ts);
    for (const t of ts) {
      assert.equal(t.session, started.session);
      assert.match(String(t.data), /^Data from producer #\d+ at \d+\.\d+$/);
      assert.ok(t.producedAt! <= t.receivedAt, 'producedAt is before the client received it');
      assert.ok(Math.abs(t.timestamp! * 1000 - Date.now()) < 60_000, 'timestamp is seconds since the epoch');
    }
    client.send('{"command": "STOP"}');
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.session, started.session);
    assert.equal(stopped.reason, 'client');
    assert.ok(stopped.chunks! >= 2);
    assert.equal(stopped.chunks, client.transcripts().length, 'stopped counts exactly the results the client got');
    assert.equal(await client.waitClose(), 1000);
    assert.deepEqual(client.invalid, []);
    await eventually(() => server.spools().length === 0, 'spool folder removed');
  });

  it('answers each bad input with a coded error and keeps the connection usable', async () => {
    const client = await TestClient.open(server.wsUrl('/ws'));
    const cases: Array<[string, string, RegExp]> = [
      ['not json', 'BAD_JSON', /not valid JSON/],
      ['[1,2]', 'BAD_MESSAGE', /JSON object/],
      ['{"url":"x"}', 'BAD_MESSAGE', /"command"/],
      ['{"command":"PAUSE"}', 'UNKNOWN_COMMAND', /PAUSE.*START, STOP/],
      ['{"command":"START","url":7}', 'BAD_MESSAGE', /field "url" must be string/],
      ['{"command":"START","pipline":"demo"}', 'BAD_MESSAGE', /pipline/],
      ['{"command":"START","pipeline":"nope"}', 'UNKNOWN_PIPELINE', /"nope".*demo/],
      ['{"command":"START","options":{"intervalMs":-5}}', 'BAD_OPTIONS', /options\.intervalMs must be >= 0/],
      ['{"command":"START","options":{"speed":1}}', 'BAD_OPTIONS', /speed/],
      ['{"command":"START","pipeline":"tail","url":"file:///etc/passwd"}', 'BAD_URL', /outside the allowed folder/],
      ['{"command":"START","pipeline":"tail","url":"http://example.com/log"}', 'BAD_URL', /file:\/\//],
    ];
    for (const [frame, code, message] of cases) {
      const from = client.messages.length;
      client.send(frame);
      const err = await client.waitFor((m) => m.type === 'error', `error for ${frame}`, from);
      assert.equal(err.code, code, frame);
      assert.match(err.message!, message, frame);
    }
    // Still usable: a valid START works, and a second START is refused without harming the first.
    const id = await client.start({ options: { intervalMs: 20 } });
    await client.waitForTranscripts(2);
    const from = client.messages.length;
    client.send({ command: 'START' });
    const dup = await client.waitFor((m) => m.type === 'error', 'ALREADY_STARTED', from);
    assert.equal(dup.code, 'ALREADY_STARTED');
    const n = client.transcripts().length;
    await client.waitForTranscripts(n + 2);
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.session, id);
    assertInOrder(client.transcripts());
    assert.deepEqual(client.invalid, []);
    assert.equal(await client.waitClose(), 1000);
  });

  it('answers STOP before any START with stopped(session null) and closes', async () => {
    const client = await TestClient.open(server.wsUrl('/ws'));
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.session, null);
    assert.equal(stopped.chunks, 0);
    assert.equal(await client.waitClose(), 1000);
  });
});
