import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import pino from 'pino';
import { ClusterAdmission } from '../../src/cluster/admission.js';
import { ClusterDirectory } from '../../src/cluster/directory.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { Lease } from '../../src/cluster/lease.js';
import { NO_CLUSTER_METRICS } from '../../src/cluster/observer.js';
import { RemoteStops } from '../../src/cluster/remote.js';
import type { components } from '../../src/generated/openapi.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

type Detail = components['schemas']['SessionDetail'];

/** The shared index's record script alone, against a real redis-server. */
describe('cluster directory records', () => {
  let redis: TestRedis;
  let client: ReturnType<typeof createClient>;
  const keys = new ClusterKeys('dir:');
  const logger = pino({ level: 'silent' });
  const none = { list: async () => [], detail: async () => null, stop: async () => null };

  function directory(instanceId: string, retainCount = 2) {
    return new ClusterDirectory({
      client,
      keys,
      instanceId,
      local: none,
      remote: new RemoteStops({ client, subscriber: client, keys, instanceId, logger, stopLocal: async () => null }),
      observer: NO_CLUSTER_METRICS,
      logger,
      callTimeoutMs: 100,
      stopGraceMs: 100,
      retainCount,
      retainMs: 60_000,
      adminToken: undefined,
    });
  }

  const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  function detail(n: number, state: Detail['state'], endReason: Detail['endReason'] = null): Detail {
    const side = { shape: 'step', state: 'idle', thread: null } as unknown as Detail['producer'];
    return {
      id: id(n), pipeline: 'demo', url: '', options: {}, state, endReason, error: null, clientAddress: '127.0.0.1',
      createdAt: new Date(1_000 + n).toISOString(), startedAt: null, endedAt: null, producer: side, consumer: side,
      counters: { produced: n, consumed: n, delivered: n, bytesProduced: n }, lag: { chunks: 0 } as Detail['lag'],
      latencyMs: { samples: 0 } as Detail['latencyMs'], spoolSizeBytes: 0, attached: true, spooled: { chunks: 0, bytes: 0 }, summary: null,
    };
  }

  before(async () => {
    redis = await startRedis();
    client = createClient({ url: redis.url });
    client.on('error', () => {});
    await client.connect();
  });
  after(async () => {
    client?.destroy();
    await redis?.stop();
  });

  async function joined(instanceId: string) {
    await new Lease({ client, keys, logger, instanceId, instanceUrl: 'http://x', leaseMs: 60_000, retainCount: 2, retainMs: 60_000 }).beat({});
    return new ClusterAdmission(client, keys, instanceId, { maxSessions: 100, maxSessionsPerClient: 0 });
  }

  it('refuses writes from an instance without a lease, and live writes for a session it does not hold', async () => {
    await client.flushAll();
    const dir = directory('a');
    assert.equal(await dir.write(detail(1, 'running'), 1001, null), 'fenced');
    const admission = await joined('a');
    assert.equal(await dir.write(detail(1, 'running'), 1001, null), 'gone', 'never admitted');
    await admission.admit(id(1), null);
    assert.equal(await dir.write(detail(1, 'running'), 1001, null), 'ok');
    assert.equal((await dir.list()).length, 1);
  });

  it('never lets a late live snapshot overwrite the end, and keeps only SESSION_RETAIN_COUNT ended records, newest first', async () => {
    await client.flushAll();
    const dir = directory('a', 2);
    const admission = await joined('a');
    for (const n of [1, 2, 3]) {
      await admission.admit(id(n), null);
      assert.equal(await dir.write(detail(n, 'running'), 1000 + n, null), 'ok');
      assert.equal(await dir.write(detail(n, 'stopped', 'client'), 1000 + n, 5000 + n), 'ok');
    }
    assert.equal(await dir.write(detail(3, 'running'), 1003, null), 'gone', 'a snapshot taken before the end');
    const listed = await dir.list();
    assert.deepEqual(listed.map((s) => s.id), [id(3), id(2)], 'the oldest ended record is gone');
    assert.ok(listed.every((s) => s.state === 'stopped' && s.endReason === 'client' && s.instance === 'a'));
    assert.equal(await client.exists(keys.session(id(1))), 0);
  });
});
