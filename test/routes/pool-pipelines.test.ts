import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { BROKEN_PIPELINES, eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

describe('REST pool, pipelines, probes and spec', () => {
  let server: TestServer;
  let base: string;
  before(async () => {
    server = await startServer({ POOL_MIN_THREADS: '1', POOL_MAX_THREADS: '2', POOL_ACTIVE_THREADS: '1', LOOP_MAX_THREADS: '3' });
    base = server.httpUrl('');
  });
  after(() => server.close());

  it('reports the pool: threads, queue, completed tasks, timings and configured bounds', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ options: { intervalMs: 20 } });
    await client.waitForTranscripts(3);
    client.send({ command: 'STOP' });
    await client.waitClose();
    const res = await api(base, 'GET', '/api/pool');
    assert.equal(res.status, 200);
    const p = res.body;
    assert.equal(p.minThreads, 1);
    assert.equal(p.maxThreads, 2);
    assert.equal(p.activeThreads, 1);
    assert.equal(p.heldThreads, 0, 'no step is stuck');
    assert.equal(p.loopMaxThreads, 3);
    assert.ok(p.threads.total >= 1);
    assert.equal(p.threads.total, p.threads.busy + p.threads.idle);
    // A quick consumer may run inside its producer's task (one hand-off per chunk), so: one task per chunk at least.
    assert.ok(p.tasksCompleted >= 3, 'at least one task per chunk delivered');
    assert.ok(p.runTimeMs.p50 !== null && p.runTimeMs.max >= p.runTimeMs.p50);
    assert.ok(p.waitTimeMs.max !== null);
    const bad = await api(base, 'GET', '/api/pool?verbose=1');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION');
  });

  it('lists pipelines with their shapes and option schemas', async () => {
    const res = await api(base, 'GET', '/api/pipelines');
    assert.equal(res.status, 200);
    const demo = res.body.items.find((p: { name: string }) => p.name === 'demo');
    assert.deepEqual(demo.producer, { shape: 'step' });
    assert.equal(demo.default, true);
    assert.equal(demo.options.properties.intervalMs.type, 'integer');
    const tail = res.body.items.find((p: { name: string }) => p.name === 'tail');
    assert.equal(tail.producer.shape, 'loop');
    assert.deepEqual(res.body.loadErrors, []);
    assert.equal((await api(base, 'GET', '/api/pipelines?name=demo')).status, 400);
  });

  it('answers livez and readyz while running', async () => {
    assert.deepEqual((await api(base, 'GET', '/livez')).body, { status: 'ok' });
    const ready = await api(base, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.checks.state, 'RUNNING');
  });

  it('serves the spec it validates against, as YAML and as JSON', async () => {
    const yaml = await api<string>(base, 'GET', '/openapi.yaml');
    const json = await api(base, 'GET', '/openapi.json');
    const onDisk = fs.readFileSync(new URL('../../../openapi.yaml', import.meta.url), 'utf8');
    assert.equal(yaml.body, onDisk);
    assert.deepEqual(json.body, parseYaml(onDisk));
  });
});

describe('REST readiness', () => {
  it('is not ready when a pipeline module failed to load, and lists the error', async () => {
    const server = await startServer({ PIPELINES_DIR: BROKEN_PIPELINES });
    try {
      const base = server.httpUrl('');
      const ready = await api(base, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.code, 'NOT_READY');
      assert.equal(ready.body.checks.pipelines.ok, false);
      assert.equal((await api(base, 'GET', '/livez')).status, 200, 'still alive');
      const pipelines = await api(base, 'GET', '/api/pipelines');
      const failed = pipelines.body.loadErrors.map((e: { module: string }) => e.module.split('/').pop()).sort();
      assert.deepEqual(failed, ['misshapen.js', 'syntax.js']);
    } finally {
      await server.close();
    }
  });

  it('is not ready while every step thread is held by a step that does not return, and ready again after', async () => {
    const server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, POOL_MAX_THREADS: '1', READY_PROBE_TIMEOUT_MS: '300', STOP_GRACE_MS: '200' });
    try {
      const base = server.httpUrl('');
      assert.equal((await api(base, 'GET', '/readyz')).status, 200);
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ pipeline: 'stuck-step' });
      await eventually(async () => (await api(base, 'GET', `/api/sessions/${id}`)).body.producer.threadId !== null, 'stuck step running');
      const busy = await api(base, 'GET', '/readyz');
      assert.equal(busy.status, 503);
      assert.equal(busy.body.checks.pool.ok, false);
      assert.match(busy.body.detail, /did not run a probe task/);
      client.send({ command: 'STOP' });
      await client.waitClose();
      await eventually(async () => (await api(base, 'GET', '/readyz')).status === 200, 'ready again once the thread is replaced');
    } finally {
      await server.close();
    }
  });

  it('is not ready while shutting down', async () => {
    // A step that ignores stop keeps the shutdown in progress until its grace period ends.
    const server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, STOP_GRACE_MS: '1500' });
    const base = server.httpUrl('');
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'stuck-step' });
    await eventually(async () => (await api(base, 'GET', `/api/sessions/${id}`)).body.producer.threadId !== null, 'stuck step running');
    const closing = server.close();
    try {
      const ready = await api(base, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.checks.state, 'CLOSING');
    } finally {
      await closing;
    }
  });
});
