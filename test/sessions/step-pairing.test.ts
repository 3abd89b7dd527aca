import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

/**
 * A step producer's task also consumes what it wrote while the step consumer is idle and quick;
 * a slow consumer runs in tasks of its own. Either way each chunk is consumed once, in order,
 * with the consumer's state carried from one chunk to the next.
 */
describe('step producer and step consumer of one session', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
  });
  after(() => server.close());

  async function runToCompletion(options: Record<string, number>, expected: number): Promise<string> {
    const client = await TestClient.open(server.wsUrl('/ws'));
    const id = await client.start({ pipeline: 'counted-chunks', options });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
    assert.equal(stopped.reason, 'completed');
    const ts = client.transcripts();
    assert.equal(ts.length, expected);
    ts.forEach((t, i) => {
      assert.equal(t.seq, i + 1, 'in order, no gap, no repeat');
      assert.deepEqual(t.data, { text: `p${i + 1}`, consumedBefore: i }, `chunk ${i + 1} consumed once, state carried`);
    });
    assert.deepEqual(client.invalid, []);
    await client.waitClose();
    return id;
  }

  it('consumes every chunk once and in order when the consumer is quick, inside the producer\'s tasks', async () => {
    const before = server.app.pool.stats().completed;
    await runToCompletion({ chunksPerStep: 3, steps: 40 }, 120);
    // Lent: the consumer runs in its producer's tasks (one burst may hold many steps). Not lent,
    // each of the producer's tasks would add a consume task.
    const tasks = server.app.pool.stats().completed - before;
    assert.ok(tasks < 60, `the quick consumer ran inside its producer's tasks (${tasks} tasks for 40 steps)`);
  });

  it('counts each call of the pipeline\'s step in inspect, on both sides, however the calls shared tasks', async () => {
    const before = server.app.pool.stats().completed;
    const id = await runToCompletion({ chunksPerStep: 3, steps: 40 }, 120);
    const tasks = server.app.pool.stats().completed - before;
    // The premise: the producer's calls shared tasks (bursts), so counting tasks would give fewer.
    assert.ok(tasks < 40, `the 40 producer calls ran in ${tasks} tasks`);
    const res = await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.producer.steps, 40, 'one for each call of producer.step');
    assert.equal(res.body.consumer.steps, 120, 'one for each chunk the consumer took');
  });

  it('keeps order and state when a slow stretch moves the consumer to tasks of its own and back', async () => {
    await runToCompletion({ chunksPerStep: 2, steps: 60, slowFrom: 20, slowTo: 40, slowMs: 5 }, 120);
    await eventually(() => server.spools().length === 0, 'spool folders removed');
  });
});
