import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { api } from '../helpers/openapi.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/server.js';

describe('cluster: Redis not there at start-up', () => {
  let redis: TestRedis | undefined;
  let cluster: TestCluster | undefined;
  const clients: TestClient[] = [];
  after(async () => {
    for (const c of clients) c.terminate();
    await cluster?.close();
    await redis?.stop();
  });

  it('starts anyway, refuses START with 503 CLUSTER_UNAVAILABLE, then joins once Redis answers and takes stops from the others', async () => {
    const port = await freePort();
    cluster = await startCluster(2, `redis://127.0.0.1:${port}`, { CLUSTER_HEARTBEAT_MS: '200', CLUSTER_LEASE_MS: '1500' });
    const [i1, i2] = cluster.instances;
    const early = await TestClient.open(i1!.wsUrl());
    clients.push(early);
    await assert.rejects(early.start(), /CLUSTER_UNAVAILABLE/);
    redis = await startRedis(port);
    await eventually(async () => {
      const pool = await api(i2!.httpUrl(''), 'GET', '/api/pool');
      return pool.status === 200 && pool.body.instances.length === 2;
    }, 'both instances joined');
    const client = await TestClient.open(i1!.wsUrl());
    clients.push(client);
    const id = await client.start({ options: { intervalMs: 20 } });
    await client.waitForTranscripts(2);
    const res = await api(i2!.httpUrl(''), 'POST', `/api/sessions/${id}/stop`);
    assert.equal(res.status, 200);
    assert.equal((await client.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'admin');
  });
});
