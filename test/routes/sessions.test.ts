import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api, type ApiResponse } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const UNKNOWN_ID = '0b8d5c7e-1f2a-4c3b-9d4e-5f6a7b8c9d0e';

describe('REST sessions', () => {
  let server: TestServer;
  let base: string;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
    base = server.httpUrl('');
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  async function open(fields: Record<string, unknown> = { options: { intervalMs: 100 } }): Promise<{ client: TestClient; id: string }> {
    const client = await TestClient.open(server.wsUrl());
    clients.push(client);
    const id = await client.start(fields);
    return { client, id };
  }

  it('lists live sessions newest first, filtered by state and pipeline, in linked pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await open()).id);
      // Distinct creation times make "newest first" observable.
      await new Promise((r) => setTimeout(r, 5));
    }
    const all = await api(base, 'GET', '/api/sessions?state=running&pipeline=demo');
    assert.equal(all.status, 200);
    const listed = all.body.items.map((s: { id: string }) => s.id).filter((id: string) => ids.includes(id));
    assert.deepEqual(listed, [...ids].reverse(), 'newest first');
    for (const item of all.body.items) {
      assert.equal(item.state, 'running');
      assert.equal(item.pipeline, 'demo');
      assert.equal(item.clientAddress, '127.0.0.1');
    }

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: ApiResponse = await api(base, 'GET', `/api/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((s: { id: string }) => s.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 20);
    assert.equal(new Set(seen).size, seen.length, 'no session on two pages');
    for (const id of ids) assert.ok(seen.includes(id), `${id} is on some page`);
    assert.ok(pages >= 2, 'limit=2 splits three sessions over pages');

    const none = await api(base, 'GET', '/api/sessions?pipeline=tail');
    assert.deepEqual(none.body, { items: [], total: 0, nextCursor: null });
  });

  it('answers a list request outside openapi.yaml with 400 VALIDATION naming the parameter', async () => {
    for (const [query, where] of [
      ['limit=0', '/query/limit'],
      ['limit=201', '/query/limit'],
      ['limit=ten', '/query/limit'],
      ['state=paused', '/query/state'],
      ['pipeline=no%20spaces', '/query/pipeline'],
      ['sort=asc', '/query/sort'],
    ] as const) {
      const res = await api(base, 'GET', `/api/sessions?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.code, 'VALIDATION', query);
      assert.ok(res.body.errors.some((e: { path: string }) => e.path === where), `${query}: ${JSON.stringify(res.body.errors)}`);
    }
    const forged = await api(base, 'GET', '/api/sessions?cursor=bm90LWEtY3Vyc29y');
    assert.equal(forged.status, 400);
    assert.equal(forged.body.code, 'VALIDATION');
    assert.match(forged.body.detail, /cursor/);
  });

  it('inspects a live session: sides, threads, counters, lag, latency and spool', async () => {
    const { client, id } = await open();
    await client.waitForTranscripts(3);
    // A step thread writes a result before its answer reaches the main thread (STEP_SENDS): the
    // counters follow within that trip.
    let res = await api(base, 'GET', `/api/sessions/${id}`);
    await eventually(async () => {
      res = await api(base, 'GET', `/api/sessions/${id}`);
      return res.body.producer?.steps >= 3 && res.body.counters?.delivered >= 3;
    }, 'the counters of three results');
    assert.equal(res.status, 200);
    const s = res.body;
    assert.equal(s.id, id);
    assert.equal(s.pipeline, 'demo');
    assert.equal(s.state, 'running');
    assert.deepEqual(s.options, { intervalMs: 100 });
    assert.equal(s.endReason, null);
    assert.equal(s.producer.shape, 'step');
    assert.equal(s.consumer.shape, 'step');
    assert.ok(s.producer.steps >= 3);
    assert.ok(s.counters.produced >= 3 && s.counters.delivered >= 3 && s.counters.bytesProduced > 0);
    assert.ok(s.latencyMs.samples >= 3 && s.latencyMs.p50 !== null);
    assert.ok(s.lag.chunks >= 0);
    assert.ok(Date.parse(s.createdAt) <= Date.parse(s.startedAt));
    assert.equal(s.summary, null);

    const bad = await api(base, 'GET', '/api/sessions/not-a-uuid');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION');
    const missing = await api(base, 'GET', `/api/sessions/${UNKNOWN_ID}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'SESSION_NOT_FOUND');
  });

  it('shows a step stuck on its thread, and stops it by force after the timeout', async () => {
    const { client, id } = await open({ pipeline: 'stuck-step' });
    let stuck: any;
    await eventually(async () => {
      stuck = (await api(base, 'GET', `/api/sessions/${id}`)).body;
      return stuck.producer.threadId !== null && stuck.producer.currentStepSeconds > 0;
    }, 'the stuck step is reported on its thread');
    assert.equal(stuck.producer.state, 'running');

    const res = await api(base, 'POST', `/api/sessions/${id}/stop?timeout=0.2`);
    assert.equal(res.status, 200);
    assert.equal(res.body.session, id);
    assert.equal(res.body.reason, 'admin');
    assert.equal(res.body.forced, true, 'the blocked thread had to be terminated');
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'admin');
    assert.equal(await client.waitClose(), 1000);

    const after = (await api(base, 'GET', `/api/sessions/${id}`)).body;
    assert.equal(after.state, 'stopped');
    assert.equal(after.producer.threadId, null);
    assert.equal(after.producer.currentStepSeconds, null);
  });

  it('stops a session like the client\'s STOP, answers with the summary, and is idempotent', async () => {
    const { client, id } = await open();
    await client.waitForTranscripts(2);
    const res = await api(base, 'POST', `/api/sessions/${id}/stop?timeout=5`);
    assert.equal(res.status, 200);
    assert.equal(res.body.reason, 'admin');
    assert.equal(res.body.forced, false);
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.session, id);
    assert.equal(stopped.reason, 'admin');
    assert.equal(stopped.chunks, res.body.chunks, 'the client and the operator see the same count');
    assert.equal(await client.waitClose(), 1000);
    assert.deepEqual(client.invalid, []);

    const again = await api(base, 'POST', `/api/sessions/${id}/stop`);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, res.body);

    const ended = await api(base, 'GET', `/api/sessions/${id}`);
    assert.equal(ended.body.state, 'stopped');
    assert.equal(ended.body.endReason, 'admin');
    assert.ok(ended.body.endedAt !== null);
    assert.deepEqual(ended.body.summary, res.body);
    assert.equal(ended.body.spoolSizeBytes, 0);
    const list = await api(base, 'GET', '/api/sessions?state=stopped');
    assert.ok(list.body.items.some((s: { id: string }) => s.id === id), 'an ended session is still listed');
  });

  it('keeps the summary of a session the client stopped and reports its real reason', async () => {
    const { client, id } = await open();
    client.send({ command: 'STOP' });
    await client.waitClose();
    const res = await api(base, 'POST', `/api/sessions/${id}/stop`);
    assert.equal(res.status, 200);
    assert.equal(res.body.reason, 'client');
  });

  it('answers stop with 400 for a bad timeout or id and 404 for an unknown session', async () => {
    for (const q of ['timeout=-1', 'timeout=601', 'timeout=soon', 'grace=1']) {
      const res = await api(base, 'POST', `/api/sessions/${UNKNOWN_ID}/stop?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.code, 'VALIDATION', q);
    }
    const badId = await api(base, 'POST', '/api/sessions/42/stop');
    assert.equal(badId.status, 400);
    const missing = await api(base, 'POST', `/api/sessions/${UNKNOWN_ID}/stop`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'SESSION_NOT_FOUND');
  });

  it('answers undocumented paths and methods under /api with problem+json', async () => {
    const res = await fetch(server.httpUrl('/api/containers'));
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type')!, /^application\/problem\+json/);
    assert.equal(((await res.json()) as { code: string }).code, 'NOT_FOUND');
    const del = await fetch(server.httpUrl('/api/sessions'), { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.equal(((await del.json()) as { code: string }).code, 'METHOD_NOT_ALLOWED');
  });
});

describe('REST sessions retention', () => {
  it('forgets ended sessions beyond SESSION_RETAIN_COUNT, oldest first', async () => {
    const server = await startServer({ SESSION_RETAIN_COUNT: '1' });
    try {
      const base = server.httpUrl('');
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const client = await TestClient.open(server.wsUrl());
        ids.push(await client.start({ options: { intervalMs: 1000 } }));
        client.send({ command: 'STOP' });
        await client.waitClose();
        // The client is told first; the session counts as ended once its spool folder is gone.
        const id = ids[i]!;
        await eventually(async () => (await api(base, 'GET', `/api/sessions/${id}`)).body.state === 'stopped', 'session ended');
      }
      assert.equal((await api(base, 'GET', `/api/sessions/${ids[0]}`)).status, 404);
      assert.equal((await api(base, 'GET', `/api/sessions/${ids[1]}`)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('forgets ended sessions older than SESSION_RETAIN_SECONDS', async () => {
    const server = await startServer({ SESSION_RETAIN_SECONDS: '0' });
    try {
      const base = server.httpUrl('');
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ options: { intervalMs: 1000 } });
      client.send({ command: 'STOP' });
      await client.waitClose();
      await eventually(async () => (await api(base, 'GET', `/api/sessions/${id}`)).status === 404, 'ended session forgotten');
      assert.equal((await api(base, 'GET', '/api/sessions')).body.total, 0);
    } finally {
      await server.close();
    }
  });
});
