import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

describe('cluster: resume anywhere', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(3, redis.url, { CLUSTER_HEARTBEAT_MS: '200', CLUSTER_LEASE_MS: '1500', RESUME_GRACE_MS: '30000' });
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
