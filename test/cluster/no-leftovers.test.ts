import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { api } from '../helpers/openapi.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/server.js';

const CYCLES = 1000;

describe('cluster: keys', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  before(async () => {
    redis = await startRedis();
    // Nothing ended is retained: every key a session made must go with it.
    cluster = await startCluster(3, redis.url, { SESSION_RETAIN_COUNT: '0', CLUSTER_HEARTBEAT_MS: '200', CLUSTER_LEASE_MS: '1500' });
  });
  after(async () => {
    await cluster?.close();
    await redis?.stop();
  });

  it(`leaves no key behind after ${CYCLES} start/stop cycles (but the live instances' own and the cluster's clock)`, async () => {
    const workers = cluster.instances.map(async (instance, w) => {
      for (let n = w; n < CYCLES; n += cluster.instances.length) {
        const client = await TestClient.open(instance.wsUrl());
        try {
          const id = await client.start({ options: { intervalMs: 1000 } });
          // Every other session is stopped through another instance.
          if (n % 2 === 0) {
            const other = cluster.instances[(w + 1) % cluster.instances.length]!;
            assert.equal((await api(other.httpUrl(''), 'POST', `/api/sessions/${id}/stop`)).status, 200);
          } else {
            client.send({ command: 'STOP' });
          }
          await client.waitFor((m) => m.type === 'stopped', 'stopped');
        } finally {
          client.terminate();
        }
      }
    });
    await Promise.all(workers);
    const expected = ['tandem:{c}:clock', 'tandem:{c}:instances', ...cluster.instances.map((i) => `tandem:{c}:instance:${i.id}`)].sort();
    await eventually(async () => JSON.stringify(await redis.keys()) === JSON.stringify(expected), 'only the instances’ own keys', 15_000).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify((await redis.keys()).slice(0, 20))}`);
    });
    assert.deepEqual(await redis.keys(), expected);
  });
});
