import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { CLI, collect, type Run } from '../helpers/cli.js';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** The CLI unchanged, pointed at any instance of a cluster. */
describe('cluster: the CLI', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  const clients: TestClient[] = [];
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(2, redis.url, { CLUSTER_HEARTBEAT_MS: '200', CLUSTER_LEASE_MS: '1500' });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await cluster?.close();
    await redis?.stop();
  });

  function tandem(baseUrl: string, ...args: string[]): Promise<Run> {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, TANDEM_URL: baseUrl }, stdio: ['ignore', 'pipe', 'pipe'] });
    return collect(child);
  }

  it('lists, inspects and stops through one instance a session that runs on the other', async () => {
    const [i1, i2] = cluster.instances;
    const client = await TestClient.open(i1!.wsUrl());
    clients.push(client);
    const id = await client.start({ options: { intervalMs: 20 } });
    await client.waitForTranscripts(2);
    const list = await tandem(i2!.httpUrl(''), 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { items: { id: string }[] }).items.some((s) => s.id === id));
    const inspect = await tandem(i2!.httpUrl(''), 'inspect', id, '--json');
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { instance: string }).instance, 'i1');
    const stop = await tandem(i2!.httpUrl(''), 'stop', id, '--json');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((JSON.parse(stop.stdout) as { reason: string }).reason, 'admin');
    assert.equal((await client.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'admin');
  });
});
