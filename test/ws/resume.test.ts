import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

async function started(server: TestServer, intervalMs = 10) {
  const client = await TestClient.open(server.wsUrl());
  const id = await client.start({ options: { intervalMs } });
  const secret = client.messages.find((m) => m.type === 'started')!.resume!;
  return { client, id, secret };
}

describe('RESUME after a dropped connection', () => {
  let server: TestServer;
  before(async () => {
    // A tiny resume window (4 KiB of results in 4 KiB segments) so a test can outrun it.
    server = await startServer({ RESUME_GRACE_MS: '1500', RESUME_RETAIN_BYTES: '4096', SPOOL_SEGMENT_BYTES: '4096' });
  });
  after(() => server.close());

  it('delivers every later result exactly once, in order, and keeps going', async () => {
    const { client, id, secret } = await started(server);
    await client.waitForTranscripts(5);
    client.terminate(); // no close frame: the peer vanished
    const last = client.transcripts().at(-1)!.seq!;
    const again = await TestClient.open(server.wsUrl('/live-transcription'));
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    await again.waitForTranscripts(10);
    assert.equal(again.transcripts()[0]!.seq, last + 1);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped');
    const seqs = [...client.transcripts().map((t) => t.seq!), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    assert.equal(stopped.chunks, seqs.length);
    assert.deepEqual(again.invalid, []);
  });

  it('refuses a wrong secret or an unknown session with one clear error, and the connection stays usable', async () => {
    const { client, id } = await started(server);
    await client.waitForTranscripts(1);
    client.terminate();
    const probe = await TestClient.open(server.wsUrl());
    for (const [session, resume] of [
      [id, 'not-the-secret'],
      ['00000000-0000-4000-8000-000000000000', 'whatever'],
    ]) {
      const from = probe.messages.length;
      probe.send({ command: 'RESUME', session, resume, after: 0 });
      const err = await probe.waitFor((m) => m.type === 'error', 'error', from);
      assert.equal(err.code, 'RESUME_FAILED');
    }
    const from = probe.messages.length;
    probe.send({ command: 'RESUME', session: id });
    assert.equal((await probe.waitFor((m) => m.type === 'error', 'error', from)).code, 'BAD_MESSAGE');
    await probe.start({ options: { intervalMs: 10 } });
    await probe.waitForTranscripts(1);
    probe.close();
  });

  it('ends a detached session when the window passes; RESUME then fails', async () => {
    const { client, id, secret } = await started(server);
    await client.waitForTranscripts(1);
    const session = server.app.sessions.get(id)!;
    client.terminate();
    await eventually(() => session.summary !== null, 'session ended after RESUME_GRACE_MS');
    assert.equal(session.summary!.reason, 'disconnect');
    await eventually(() => !server.spools().includes(id), 'spool removed');
    const late = await TestClient.open(server.wsUrl());
    late.send({ command: 'RESUME', session: id, resume: secret, after: 1 });
    assert.equal((await late.waitFor((m) => m.type === 'error', 'error')).code, 'RESUME_FAILED');
    late.close();
  });

  it('says RESUME_GAP when the results to replay are no longer kept, and BAD_MESSAGE for an after beyond what was sent', async () => {
    const { client, id, secret } = await started(server, 1);
    // Far more than 4 KiB of results: the first segments have left the window.
    await client.waitForTranscripts(300);
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.resumableFrom > 2, 'the oldest results segment expired');
    client.terminate();
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: 1 });
    const gap = await again.waitFor((m) => m.type === 'error', 'error');
    assert.equal(gap.code, 'RESUME_GAP');
    assert.match(gap.message!, /no longer kept: the resume window .* reaches back to seq (\d+)/);
    const from = Number(/reaches back to seq (\d+)/.exec(gap.message!)![1]);
    assert.ok(from > 2, `the window starts after seq 2 (${from})`);
    again.send({ command: 'RESUME', session: id, resume: secret, after: 1_000_000 });
    const beyond = await again.waitFor((m) => m.type === 'error' && m.code !== 'RESUME_GAP', 'error');
    assert.equal(beyond.code, 'BAD_MESSAGE');
    assert.match(beyond.message!, /after/);
    again.close();
  });

  it('takes the session over from a connection that still looks open, closing that one 4001', async () => {
    const { client, id, secret } = await started(server);
    await client.waitForTranscripts(3);
    const last = client.transcripts().at(-1)!.seq!;
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    assert.equal(await client.waitClose(), 4001);
    await again.waitForTranscripts(3);
    const seqs = [...client.transcripts().map((t) => t.seq!).filter((s) => s <= last), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    again.send({ command: 'STOP' });
    await again.waitClose();
  });
});

describe('RESUME after a stalled link dies', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ RESUME_GRACE_MS: '20000' });
  });
  after(() => server.close());

  it('replays from disk everything a fast session sent into the dying connection: no gap, no repeat', async () => {
    const { client, id, secret } = await started(server, 0);
    await client.waitForTranscripts(50);
    // The link stalls: the client reads nothing, so the server's writes pile up in buffers that die.
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const session = server.app.sessions.get(id)!;
    const before = client.transcripts().length;
    await eventually(() => session.delivered > before + 1000, 'the server sent on into the stalled link');
    client.terminate(); // then it dies without a close frame
    await eventually(() => !session.attached, 'the session waits for RESUME');
    const received = client.transcripts();
    const last = received.at(-1)!.seq!;
    assert.ok(session.delivered - last > 64, `more results were lost in the dead link (${session.delivered - last}) than a 64-result ring kept`);
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    const target = session.delivered + 100;
    await again.waitForTranscripts(target - last, 30_000);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
    const seqs = [...received.map((t) => t.seq!), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'every result once, in order');
    assert.equal(stopped.chunks, seqs.length);
    for (const t of again.transcripts()) assert.match(String(t.data), new RegExp(`^Data from producer #${t.seq} at `));
    assert.deepEqual(again.invalid, []);
  });
});
