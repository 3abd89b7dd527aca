import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { LogCapture } from '../helpers/logs.js';
import { api } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const UNKNOWN_ID = '0b8d5c7e-1f2a-4c3b-9d4e-5f6a7b8c9d0e';

interface Listed {
  id: string;
  session: string | null;
  live: boolean;
  sizeBytes: number;
  files: number;
}

describe('REST kept spools', () => {
  let server: TestServer;
  let base: string;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, KEPT_SPOOLS_ALLOWED: 'true', ADMIN_TOKEN: ADMIN, ADMIN_READ_TOKEN: READ });
    base = server.httpUrl('');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  async function open(): Promise<TestClient> {
    const client = await TestClient.open(server.wsUrl());
    clients.push(client);
    return client;
  }

  const listed = async (token = READ): Promise<Listed[]> => {
    const res = await api(base, 'GET', '/api/spools', { token });
    assert.equal(res.status, 200);
    return res.body.items as Listed[];
  };

  it('lists a kept spool after its session ended, and deletes it from disk and the list', async () => {
    const client = await open();
    const id = await client.start({ pipeline: 'finite', options: { count: 3 }, keep: true });
    assert.equal((await client.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'completed');
    await eventually(async () => (await listed()).some((s) => s.id === id && !s.live), 'the ended kept spool listed');
    const item = (await listed()).find((s) => s.id === id)!;
    assert.equal(item.session, 'stopped');
    assert.ok(item.sizeBytes > 0 && item.files > 0, JSON.stringify(item));

    const readOnly = await api(base, 'DELETE', `/api/spools/${id}`, { token: READ });
    assert.equal(readOnly.status, 403);
    assert.equal(readOnly.body.code, 'FORBIDDEN');
    assert.ok(fs.existsSync(path.join(server.dataDir, 'spool', id)), 'a refused delete removes nothing');

    const removed = await api(base, 'DELETE', `/api/spools/${id}`, { token: ADMIN });
    assert.equal(removed.status, 200);
    assert.equal(removed.body.id, id);
    assert.ok(!fs.existsSync(path.join(server.dataDir, 'spool', id)), 'gone from disk');
    assert.ok(!(await listed()).some((s) => s.id === id), 'gone from the list');
    const again = await api(base, 'DELETE', `/api/spools/${id}`, { token: ADMIN });
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'SPOOL_NOT_FOUND');
  });

  it('lists a running session\'s kept spool as live and refuses to delete it with 409', async () => {
    const client = await open();
    const id = await client.start({ options: { intervalMs: 20 }, keep: true });
    await client.waitForTranscripts(2);
    const item = (await listed()).find((s) => s.id === id);
    assert.equal(item?.live, true);
    assert.equal(item?.session, 'running');
    const res = await api(base, 'DELETE', `/api/spools/${id}`, { token: ADMIN });
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'SPOOL_LIVE');
    client.send({ command: 'STOP' });
    await client.waitClose();
    await eventually(async () => (await listed()).some((s) => s.id === id && !s.live), 'not live once stopped');
    assert.equal((await api(base, 'DELETE', `/api/spools/${id}`, { token: ADMIN })).status, 200);
  });

  it('answers 400 for an id that is not a session id and 404 for an unknown one', async () => {
    for (const bad of ['not-a-uuid', UNKNOWN_ID.slice(1), 'x%2F..%2F..%2Fetc']) {
      const res = await api(base, 'DELETE', `/api/spools/${bad}`, { token: ADMIN });
      assert.equal(res.status, 400, bad);
      assert.equal(res.body.code, 'VALIDATION');
    }
    const res = await api(base, 'DELETE', `/api/spools/${UNKNOWN_ID}`, { token: ADMIN });
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'SPOOL_NOT_FOUND');
    assert.equal((await api(base, 'GET', '/api/spools')).status, 401);
  });
});

describe('kept spools, bounded', () => {
  it('refuses keep: true by default, naming KEPT_SPOOLS_ALLOWED; the connection stays usable', async () => {
    const server = await startServer();
    const client = await TestClient.open(server.wsUrl());
    try {
      client.send({ command: 'START', keep: true });
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'KEEP_NOT_ALLOWED');
      assert.match(err.message!, /KEPT_SPOOLS_ALLOWED/);
      await client.start({ options: { intervalMs: 10 } });
      await client.waitForTranscripts(2);
      assert.equal(server.spools().length, 1);
      client.send({ command: 'STOP' });
      await client.waitClose();
      await eventually(() => server.spools().length === 0, 'no spool kept');
    } finally {
      client.terminate();
      await server.close();
    }
  });

  it('removes a kept spool over KEPT_SPOOLS_MAX_BYTES when its session ends, and one past its age on the timer', async () => {
    const logs = [new LogCapture(), new LogCapture()] as const;
    const server = await startServer(
      { PIPELINES_DIR: FIXTURE_PIPELINES, KEPT_SPOOLS_ALLOWED: 'true', KEPT_SPOOLS_MAX_BYTES: '0', LOG_LEVEL: 'info' },
      { logs: logs[0] },
    );
    const aging = await startServer(
      {
        PIPELINES_DIR: FIXTURE_PIPELINES,
        KEPT_SPOOLS_ALLOWED: 'true',
        KEPT_SPOOLS_MAX_AGE_SECONDS: '1',
        KEPT_SPOOLS_SWEEP_INTERVAL_SECONDS: '1',
        LOG_LEVEL: 'info',
      },
      { logs: logs[1] },
    );
    const reasons = ['KEPT_SPOOLS_MAX_BYTES', 'KEPT_SPOOLS_MAX_AGE_SECONDS'];
    const clients: TestClient[] = [];
    try {
      for (const [i, s] of [server, aging].entries()) {
        const client = await TestClient.open(s.wsUrl());
        clients.push(client);
        const id = await client.start({ pipeline: 'finite', options: { count: 3 }, keep: true });
        await client.waitFor((m) => m.type === 'stopped', 'stopped');
        // Removed by the bound, not by the session's own end (that would mean it was never kept).
        const removals = () => logs[i]!.matching({ msg: 'kept spools removed' }).flatMap((l) => l.removed as Array<{ spool: string; reason: string }>);
        await eventually(() => removals().length > 0, `the kept spool of ${id} removed`);
        assert.deepEqual(removals(), [{ spool: id, reason: reasons[i] }]);
        assert.ok(!s.spools().includes(id), 'gone from disk');
      }
    } finally {
      for (const c of clients) c.terminate();
      await server.close();
      await aging.close();
    }
  });
});
