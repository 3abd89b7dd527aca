import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { api } from '../helpers/openapi.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/server.js';

describe('cluster: Redis restarted between two heartbeats', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await startRedis();
    // A heartbeat far away: nothing but a START can make this instance join again within the test.
    cluster = await startCluster(1, redis.url, { CLUSTER_HEARTBEAT_MS: '60000', CLUSTER_LEASE_MS: '180000', REDIS_COMMAND_TIMEOUT_MS: '500' });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await cluster?.close();
    await redis?.stop();
  });

  async function start(url: string): Promise<{ client: TestClient; id: string }> {
    const client = await TestClient.open(url);
    clients.push(client);
    return { client, id: await client.start({ options: { intervalMs: 20 } }) };
  }

  it('admits a START at once on an instance Redis has forgotten: it joins again then, and its running sessions take their places again', async () => {
    const [i1] = cluster.instances;
    const old = await start(i1!.wsUrl());
    await old.client.waitForTranscripts(2);
    await redis.restart();
    // Redis answers again and has forgotten the instance (its next heartbeat is a minute away).
    await eventually(async () => {
      const pool = await api(i1!.httpUrl(''), 'GET', '/api/pool');
      return pool.status === 200 && pool.body.instances.length === 0;
    }, 'Redis answers, without this instance');
    assert.equal(await redis.cli('HLEN', 'tandem:{c}:places'), '0', 'Redis lost every place');
    const fresh = await start(i1!.wsUrl());
    await fresh.client.waitForTranscripts(2);
    const pool = await api(i1!.httpUrl(''), 'GET', '/api/pool');
    assert.deepEqual(pool.body.instances.map((x: { id: string }) => x.id), ['i1'], 'joined again');
    assert.equal(await redis.cli('HEXISTS', 'tandem:{c}:places', old.id), '1', 'the running session took its place again');
    assert.equal(await redis.cli('HEXISTS', 'tandem:{c}:places', fresh.id), '1', 'the new session has its place');
    assert.equal(old.client.closeCode, null, 'the running session streams on');
    old.client.close();
    fresh.client.close();
  });
});
