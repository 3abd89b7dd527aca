import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import pino from 'pino';
import { ClusterAdmission } from '../../src/cluster/admission.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { Lease } from '../../src/cluster/lease.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** The lease and admission scripts alone, against a real redis-server (no tandem instance). */
describe('cluster lease and admission scripts', () => {
  let redis: TestRedis;
  let client: ReturnType<typeof createClient>;
  const keys = new ClusterKeys('unit:');
  const logger = pino({ level: 'silent' });
  const lease = (id: string, leaseMs = 60_000) =>
    new Lease({ client, keys, logger, instanceId: id, instanceUrl: `http://127.0.0.1/${id}`, leaseMs, retainCount: 10, retainMs: 60_000 });

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

  it('admits up to the limits, per client too, refuses an instance without a lease, and releases once', async () => {
    await client.flushAll();
    const a = new ClusterAdmission(client, keys, 'a', { maxSessions: 3, maxSessionsPerClient: 2 });
    assert.equal(await a.admit('s0', '10.0.0.1'), 'unjoined');
    assert.equal(await client.hLen(keys.places), 0, 'an instance without a lease takes no place');
    assert.equal(await lease('a').beat({}), 'registered');
    assert.equal(await a.admit('s1', '10.0.0.1'), 'admitted');
    await a.admit('s2', '10.0.0.1');
    await assert.rejects(a.admit('s3', '10.0.0.1'), (err: { code: string }) => err.code === 'TOO_MANY_CLIENT_SESSIONS');
    await a.admit('s3', '10.0.0.2');
    await assert.rejects(a.admit('s4', null), (err: { code: string }) => err.code === 'TOO_MANY_SESSIONS');
    assert.equal(await a.release('s1'), 1);
    assert.equal(await a.release('s1'), 0, 'a second release frees nothing');
    assert.equal(await client.hGet(keys.clients, '10.0.0.1'), '1');
    await a.admit('s4', null);
    assert.equal(await client.hLen(keys.places), 3);
  });

  it('reaps an instance whose lease expired: its sessions fail (instance_lost), places freed, and it finds itself fenced', async () => {
    await client.flushAll();
    const gone = lease('gone', 200);
    const other = lease('other');
    await gone.beat({});
    await other.beat({});
    await new ClusterAdmission(client, keys, 'gone', { maxSessions: 10, maxSessionsPerClient: 0 }).admit('s1', '10.0.0.9');
    await client.hSet(keys.session('s1'), { owner: 'gone', state: 'running', d: '{}' });
    await new Promise((r) => setTimeout(r, 400));
    await other.beat({});
    assert.deepEqual(await other.reap(), [1, 1]);
    assert.equal(await client.hGet(keys.session('s1'), 'state'), 'failed');
    assert.equal(await client.hGet(keys.session('s1'), 'reason'), 'instance_lost');
    assert.equal(await client.hLen(keys.places), 0);
    assert.equal(await client.hLen(keys.clients), 0);
    assert.equal(await gone.beat({}), 'fenced');
    assert.equal(await gone.beat({}), 'fenced', 'until its sessions are stopped');
    gone.rejoin();
    assert.equal(await gone.beat({}), 'registered');
    assert.equal(await gone.beat({}), 'ok');
  });

  it('an instance that outlived its lease unnoticed while the others beat reaps itself on its next beat', async () => {
    await client.flushAll();
    const slow = lease('slow', 200);
    const other = lease('busy');
    await slow.beat({});
    await other.beat({});
    for (let n = 0; n < 8; n++) {
      await new Promise((r) => setTimeout(r, 50));
      await other.beat({});
    }
    assert.equal(await slow.beat({}), 'fenced');
    assert.equal(await client.zScore(keys.instances, 'slow'), null);
  });

  it('declares no instance lost when nobody reached Redis for longer than a lease (Redis itself was away)', async () => {
    await client.flushAll();
    const a = lease('a', 200);
    const b = lease('b', 200);
    await a.beat({});
    await b.beat({});
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await a.reap(), [0, 2]);
    assert.equal(await a.beat({}), 'ok');
    assert.equal(await b.beat({}), 'ok');
  });

  it('a process joining under the id of a dead one whose lease still runs fails what that one ran', async () => {
    await client.flushAll();
    const before = lease('same');
    await before.beat({});
    await new ClusterAdmission(client, keys, 'same', { maxSessions: 10, maxSessionsPerClient: 0 }).admit('old', '');
    await client.hSet(keys.session('old'), { owner: 'same', state: 'running', d: '{}' });
    const restarted = lease('same');
    assert.equal(await restarted.beat({}), 'registered');
    assert.equal(await client.hGet(keys.session('old'), 'state'), 'failed');
    assert.equal(await client.hLen(keys.places), 0);
    assert.equal(await client.exists(keys.fenced('same')), 0);
    assert.equal(await restarted.beat({}), 'ok');
  });

  it('asks for a rebuild when Redis has forgotten a joined instance (restarted empty)', async () => {
    await client.flushAll();
    const l = lease('x');
    assert.equal(await l.beat({}), 'registered');
    await client.flushAll();
    assert.equal(await l.beat({}), 'rebuild');
    assert.equal(await l.beat({}), 'ok');
  });
});
