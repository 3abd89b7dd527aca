import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import type { Socket } from 'node:net';
import { assertInOrder } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually, FIXTURE_PIPELINES } from '../helpers/server.js';

const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;

describe('cluster: resume anywhere', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(3, redis.url, {
      CLUSTER_HEARTBEAT_MS: '200',
      CLUSTER_LEASE_MS: '1500',
      RESUME_GRACE_MS: '30000',
      PIPELINES_DIR: FIXTURE_PIPELINES,
      SEND_BUFFER_HIGH_BYTES: '65536',
      SPOOL_QUOTA_CHUNKS: '20',
    });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await cluster?.close();
    await redis?.stop();
  });

  async function open(url: string): Promise<TestClient> {
    const c = await TestClient.open(url);
    clients.push(c);
    return c;
  }

  async function started(url: string) {
    const client = await open(url);
    const id = await client.start({ options: { intervalMs: 10 } });
    const secret = client.messages.find((m) => m.type === 'started')!.resume!;
    return { client, id, secret };
  }

  it('relays a RESUME sent to another instance: every later result once, in order, and STOP goes through', async () => {
    const [i1, i2] = cluster.instances;
    const { client, id, secret } = await started(i1!.wsUrl());
    await client.waitForTranscripts(5);
    client.terminate();
    const last = client.transcripts().at(-1)!.seq!;
    const again = await open(i2!.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    const resumed = await again.waitFor((m) => m.type === 'resumed' || m.type === 'error', 'resumed');
    assert.equal(resumed.type, 'resumed', JSON.stringify(resumed));
    await again.waitForTranscripts(20);
    assert.equal(again.transcripts()[0]!.seq, last + 1);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assert.equal(await again.waitClose(), 1000);
    const seqs = [...client.transcripts().map((t) => t.seq!), ...again.transcripts().map((t) => t.seq!)];
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    assert.equal(stopped.chunks, seqs.length);
    assert.deepEqual(again.invalid, []);
  });

  it('closes the old, still half-open connection 4001 when the session is resumed through another instance', async () => {
    const [i1, , i3] = cluster.instances;
    const { client, id, secret } = await started(i1!.wsUrl());
    await client.waitForTranscripts(3);
    const last = client.transcripts().at(-1)!.seq!;
    const again = await open(i3!.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    assert.equal(await client.waitClose(), 4001);
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    await again.waitForTranscripts(5);
    const seqs = again.transcripts().map((t) => t.seq!);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => last + 1 + i));
    again.close();
  });

  it('passes backpressure through the relay: a client that stops reading pauses the session on its owner, and nothing is lost', async () => {
    const [i1, i2] = cluster.instances;
    const first = await open(i1!.wsUrl());
    const id = await first.start({ pipeline: 'bulky', options: { chunkBytes: 65_536 } });
    const secret = first.messages.find((m) => m.type === 'started')!.resume!;
    await first.waitForTranscripts(1);
    first.terminate();
    const last = first.transcripts().at(-1)!.seq!;
    const again = await open(i2!.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: secret, after: last });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    socketOf(again).pause();
    await eventually(async () => {
      const owner = await api(i1!.httpUrl(''), 'GET', `/api/sessions/${id}`);
      return owner.body.producer.state === 'paused' && owner.body.consumer.state === 'paused';
    }, 'the owner paused the session behind the slow relayed client', 60_000);
    socketOf(again).resume();
    await again.waitForTranscripts(30, 60_000);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
    const seqs = [...first.transcripts(), ...again.transcripts()];
    assertInOrder(seqs);
    assert.equal(stopped.chunks, seqs.length, 'everything sent was received');
    for (const t of again.transcripts()) assert.equal(t.data, String(t.seq! % 10).repeat(65_536));
  });

  it('refuses a RESUME with a wrong secret through another instance with the owner’s RESUME_FAILED', async () => {
    const [i1, i2] = cluster.instances;
    const { client, id } = await started(i1!.wsUrl());
    await client.waitForTranscripts(1);
    const probe = await open(i2!.wsUrl());
    probe.send({ command: 'RESUME', session: id, resume: 'not-the-secret', after: 0 });
    assert.equal((await probe.waitFor((m) => m.type === 'error', 'error')).code, 'RESUME_FAILED');
    client.close();
  });
});
