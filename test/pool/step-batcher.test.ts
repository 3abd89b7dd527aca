import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { assertFailed, goOn, stopAll, stopHung } from '../helpers/lockstep.js';
import { holdMainThread } from '../helpers/event-loop.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

const BYSTANDERS = 5;

/** A counter of the service's /metrics, summed over its labels that match `labels`. */
async function metric(server: TestServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(server.httpUrl('/metrics'))).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && line.includes(labels)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

/** Five lockstep bystanders, then a lockstep victim with `fault` at its fifth step: their steps fall due together. */
async function startAll(server: TestServer, fault: string) {
  const bystanders: TestClient[] = [];
  for (let i = 0; i < BYSTANDERS; i++) {
    const c = await TestClient.open(server.wsUrl());
    await c.start({ pipeline: 'lockstep' });
    bystanders.push(c);
  }
  const victim = await TestClient.open(server.wsUrl());
  const id = await victim.start({ pipeline: 'lockstep', options: { fault, faultAt: 5 } });
  return { bystanders, victim, id };
}

describe('steps of many sessions batched into shared pool tasks', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      POOL_MAX_THREADS: '2',
      STEP_BATCH_STALL_MS: '100',
      // A busy machine can make a quick step slow now and then: none runs alone before the hang.
      STEP_BATCH_SOLO_MS: '5000',
      STOP_GRACE_MS: '300',
      // One chunk a step: the sessions' steps go out together turn after turn, in one task (fewer than STEP_BATCH_SPREAD_MIN each for two).
      PRODUCER_BURST_CHUNKS: '1',
      WORKER_MAX_HEAP_MB: '32',
      // One answer per task: when a step hangs, every other step of its task is still unanswered
      // and is taken back. (Answered in parts, those before it may already have been answered:
      // the next suite.)
      STEP_BATCH_ANSWER_US: '0',
    });
  });
  after(() => server.close());

  it('a hung step holds only its own session: the others of its task are taken back and go on', async () => {
    const takenBefore = await metric(server, 'tandem_step_batch_taken_back_total', 'why="stalled"');
    const { bystanders, victim, id } = await startAll(server, 'block');
    const session = server.app.sessions.get(id)!;
    await eventually(() => (session.sideInfo('producer').currentStepSeconds ?? 0) > 0.3, 'the victim is hung in its step');
    await goOn(bystanders, 10);
    assert.ok(
      (await metric(server, 'tandem_step_batch_taken_back_total', 'why="stalled"')) > takenBefore,
      'steps that shared the hung step\'s task were taken back',
    );
    await stopHung(victim, session);
    await goOn(bystanders, 5);
    await stopAll(bystanders);
  });

  it('a main thread busy past the stall takes nothing back from a task that answered meanwhile', async () => {
    const { bystanders, victim } = await startAll(server, 'none');
    const clients = [...bystanders, victim];
    await goOn(clients, 5);
    const takenBefore = await metric(server, 'tandem_step_batch_taken_back_total', 'why="stalled"');
    for (let i = 0; i < 3; i++) {
      // Their steps ask for no wait: a task is on its way whenever a timer runs. Held three
      // stalls (100 ms) long, the main thread finds it answered, its answer unread.
      holdMainThread(300);
      await goOn(clients, 3);
    }
    assert.equal(await metric(server, 'tandem_step_batch_taken_back_total', 'why="stalled"'), takenBefore, 'no step was taken back');
    await stopAll(clients);
  });

  it('a step whose thread dies fails only its own session: the rest of its task is rolled back and run again', async () => {
    const { bystanders, victim } = await startAll(server, 'exit');
    await assertFailed(victim, /its worker thread exited with code 3/);
    assert.equal(await victim.waitClose(), 1011);
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });

  it('a step that throws fails only its own session', async () => {
    const { bystanders, victim } = await startAll(server, 'throw');
    await assertFailed(victim, /deliberate fault in the producer/);
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });

  it('sends the steps due together in few tasks', async () => {
    const { bystanders, victim } = await startAll(server, 'none');
    await goOn([...bystanders, victim], 3);
    const tasks = async () => {
      const text = await (await fetch(server.httpUrl('/metrics'))).text();
      return { count: Number(/^tandem_step_batch_steps_count (\S+)$/m.exec(text)![1]), sum: Number(/^tandem_step_batch_steps_sum (\S+)$/m.exec(text)![1]) };
    };
    const before = await tasks();
    await goOn([...bystanders, victim], 10);
    const after = await tasks();
    const perTask = (after.sum - before.sum) / (after.count - before.count);
    // Six sessions whose steps travel together: one task a turn (fewer than STEP_BATCH_SPREAD_MIN for two), so well over two steps a task.
    assert.ok(perTask > 2, `steps per task on average: ${perTask.toFixed(2)}`);
    await stopAll([...bystanders, victim]);
  });
});

describe('a task answered in parts (STEP_BATCH_ANSWER_US) with a failing step in it', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      POOL_MAX_THREADS: '2',
      STEP_BATCH_STALL_MS: '100',
      STEP_BATCH_SOLO_MS: '5000',
      STOP_GRACE_MS: '300',
      PRODUCER_BURST_CHUNKS: '1',
      WORKER_MAX_HEAP_MB: '32',
      // A part after every step: the steps that ran before the failing one were answered while it
      // ran; those after it were not. No step may be lost or run twice either way (lockstep).
      STEP_BATCH_ANSWER_US: '1',
    });
  });
  after(() => server.close());

  it('a hung step holds only its own session: its task mates, answered or taken back, go on', async () => {
    const { bystanders, victim, id } = await startAll(server, 'block');
    const session = server.app.sessions.get(id)!;
    await eventually(() => (session.sideInfo('producer').currentStepSeconds ?? 0) > 0.3, 'the victim is hung in its step');
    await goOn(bystanders, 10);
    await stopHung(victim, session);
    await goOn(bystanders, 5);
    await stopAll(bystanders);
  });

  it('a step whose thread dies fails only its own session: what was answered stays, the rest runs again', async () => {
    const { bystanders, victim } = await startAll(server, 'exit');
    await assertFailed(victim, /its worker thread exited with code 3/);
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });
});

describe('the step time limit (STEP_TIMEOUT_MS)', () => {
  const TIMEOUT_MS = 2000;
  let server: TestServer;
  before(async () => {
    server = await startServer({ STEP_TIMEOUT_MS: String(TIMEOUT_MS), STEP_BATCH_STALL_MS: '50' });
  });
  after(() => server.close());

  it('never ends a step whose code returned while the main thread was too busy to hear its answer', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 0 } });
    await client.waitForTranscripts(20);
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.producer.busy, 'a producer step under way');
    // The main thread is held past the limit, and until no thread runs the session's code: the
    // watchdog (a timer) then comes due before the step's answer (a message) can be handled.
    const heldFrom = performance.now();
    const runs = () => session.sideInfo('producer').threadId !== null || session.sideInfo('consumer').threadId !== null;
    while (performance.now() - heldFrom < TIMEOUT_MS + 300 || runs()) {
      if (performance.now() - heldFrom > 15_000) throw new Error('a side still runs on a thread after 15 s');
    }
    assert.ok(session.producer.busy, 'the answer of the step is not handled yet when the watchdog comes due');
    await client.waitForTranscripts(client.transcripts().length + 20);
    assert.deepEqual(
      client.messages.filter((m) => m.type === 'error'),
      [],
      'a step whose code had returned is not ended by the limit',
    );
    assert.equal(session.state, 'running');
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assertInOrder(client.transcripts());
  });
});
