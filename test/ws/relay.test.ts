import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

/**
 * Two real instances: `owner` runs the sessions, `other` relays RESUMEs for them. Where a session
 * runs is told here by asking the owner's registry; with REDIS_URL the shared directory tells it.
 */
describe('RESUME through an instance that does not run the session', () => {
  let owner: TestServer;
  let other: TestServer;
  let unreachable = '';
  before(async () => {
    owner = await startServer({ RESUME_GRACE_MS: '5000' });
    // A port nothing listens on: an owner that is gone.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    unreachable = `http://127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    other = await startServer(
      {},
      {
        relay: {
          connectTimeoutMs: 2000,
          owners: {
            async ownerOf(id) {
              if (id === '00000000-0000-4000-8000-00000000dead') return unreachable;
              return owner.app.sessions.get(id) ? owner.httpUrl('') : null;
            },
          },
        },
      },
    );
  });
  after(async () => {
    await other?.close();
    await owner?.close();
  });

  async function startedOnOwner(intervalMs = 10) {
    const client = await TestClient.open(owner.wsUrl());
    const id = await client.start({ options: { intervalMs } });
    const secret = client.messages.find((m) => m.type === 'started')!.resume!;
    return { client, id, secret };
  }

  it('relays every later result once, in order, and a STOP sent through it ends the session on its owner', async () => {
    const { client, id, secret } = await startedOnOwner();
    await client.waitForTranscripts(5);
    client.terminate(); // vanished: no close frame
    await eventually(() => owner.app.sessions.get(id)?.attached === false, 'the owner noticed the drop');
    const last = client.transcripts().at(-1)!.seq!;
    const again = await TestClient.open(other.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    const resumed = await again.waitFor((m) => m.type === 'resumed', 'resumed');
    assert.equal(resumed.session, id);
    await again.waitForTranscripts(20);
    assert.equal(other.app.sessions.get(id), undefined, 'the session did not move: it still runs on its owner');
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assert.equal(await again.waitClose(), 1000);
    const seqs = [...client.transcripts().map((t) => t.seq!), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'no gap, no repeat, in order');
    assert.equal(stopped.chunks, seqs.length);
    await eventually(() => owner.app.sessions.get(id) === undefined && !owner.spools().includes(id), 'session and spool gone on the owner');
    assert.deepEqual(again.invalid, []);
  });

  it('closes the old connection, still open on the owner, with 4001', async () => {
    const { client, id, secret } = await startedOnOwner();
    await client.waitForTranscripts(3);
    const last = client.transcripts().at(-1)!.seq!;
    const again = await TestClient.open(other.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    assert.equal(await client.waitClose(), 4001);
    await again.waitForTranscripts(3);
    assert.equal(again.transcripts()[0]!.seq! <= client.transcripts().at(-1)!.seq! + 1, true, 'no result skipped between the two connections');
    again.close();
    await eventually(() => owner.app.sessions.get(id) === undefined, 'a close frame through the relay ends the session on its owner');
  });

  it('leaves the session resumable when the relayed client vanishes', async () => {
    const { client, id, secret } = await startedOnOwner();
    await client.waitForTranscripts(2);
    client.terminate();
    const second = await TestClient.open(other.wsUrl());
    second.send({ command: 'RESUME', session: id, resume: secret, after: client.transcripts().at(-1)!.seq! });
    await second.waitFor((m) => m.type === 'resumed', 'resumed');
    await second.waitForTranscripts(2);
    second.terminate();
    await eventually(() => owner.app.sessions.get(id)?.attached === false, 'the owner saw the relay vanish, not close');
    const third = await TestClient.open(owner.wsUrl());
    third.send({ command: 'RESUME', session: id, resume: secret, after: second.transcripts().at(-1)!.seq! });
    await third.waitFor((m) => m.type === 'resumed', 'resumed on the owner itself');
    third.send({ command: 'STOP' });
    assert.equal((await third.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'client');
  });

  it('answers OWNER_UNREACHABLE when the owner cannot be reached, and the connection stays usable', async () => {
    const probe = await TestClient.open(other.wsUrl());
    probe.send({ command: 'RESUME', session: '00000000-0000-4000-8000-00000000dead', resume: 'x', after: 0 });
    const err = await probe.waitFor((m) => m.type === 'error', 'error');
    assert.equal(err.code, 'OWNER_UNREACHABLE');
    assert.match(err.message!, /retry RESUME/);
    assert.doesNotMatch(err.message!, /127\.0\.0\.1/, 'no internal address shown to a client');
    await probe.start({ options: { intervalMs: 10 } });
    await probe.waitForTranscripts(1);
    probe.close();
  });

  it("passes the owner's refusal back (wrong secret), and the connection is the client's own again", async () => {
    const { client, id } = await startedOnOwner();
    await client.waitForTranscripts(1);
    client.terminate();
    const probe = await TestClient.open(other.wsUrl());
    probe.send({ command: 'RESUME', session: id, resume: 'not-the-secret', after: 0 });
    assert.equal((await probe.waitFor((m) => m.type === 'error', 'error')).code, 'RESUME_FAILED');
    // A START now runs here, on the instance the client is connected to, not on the owner.
    const started = await probe.start({ options: { intervalMs: 10 } });
    assert.ok(other.app.sessions.get(started), 'the new session runs on the instance the client reached');
    probe.close();
  });
});
