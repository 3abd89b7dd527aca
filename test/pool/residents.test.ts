/**
 * Resident steps (STEP_RESIDENTS, pool/residents.ts): step producers kept by a step thread, which
 * runs their steps on its own ticks. Every guarantee of a batch holds for them: results in order,
 * none lost or run twice (the lockstep fixture's text counts the steps in their state), a stop
 * that leaves no thread running anything of the session, and a hung, failing or dying step that
 * ends only its own session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { assertFailed, goOn, stopAll, stopHung } from '../helpers/lockstep.js';
import { holdMainThread, holdTwoTurns } from '../helpers/event-loop.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';
import { scrapedValue } from '../helpers/exposition.js';

const BYSTANDERS = 5;
const PERIOD_MS = 20;

async function startLockstep(server: TestServer, options: Record<string, unknown> = {}) {
  const client = await TestClient.open(server.wsUrl());
  const id = await client.start({ pipeline: 'lockstep', options: { periodMs: PERIOD_MS, ...options } });
  return { client, id };
}

/** Five bystanders and a victim with `fault` at its fifth step, all on the same period. */
async function startAll(server: TestServer, fault: string) {
  const bystanders: TestClient[] = [];
  for (let i = 0; i < BYSTANDERS; i++) bystanders.push((await startLockstep(server)).client);
  const { client: victim, id } = await startLockstep(server, { fault, faultAt: 5 });
  return { bystanders, victim, id };
}

function residents(server: TestServer): number {
  return server.app.residents?.count ?? -1;
}

function totals(server: TestServer) {
  return { ...server.app.residents!.totals };
}

/** Runs `check`; if it fails, the client's session is stopped first, so it cannot spill into the next test's counts. */
async function stoppedIfFailing(client: TestClient, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    client.send({ command: 'STOP' });
    await client.waitClose().catch(() => {});
    throw err;
  }
}

/** Results `from` on, consecutive from `first`: no gap, no repeat, each "lockstep <seq>". */
function assertConsecutive(client: TestClient, first: number): void {
  client.transcripts().forEach((t, i) => {
    assert.equal(t.seq, first + i, `result #${i + 1}`);
    assert.equal(t.data, `lockstep ${t.seq}`);
  });
}

/** Two step threads, every wait resident, one chunk a step, a stall after 100 ms. */
const RESIDENTS_ENV = {
  PIPELINES_DIR: FIXTURE_PIPELINES,
  POOL_MAX_THREADS: '2',
  STEP_RESIDENTS: 'true',
  STEP_RESIDENT_MIN_MS: '1',
  STEP_BATCH_STALL_MS: '100',
  // A busy machine can make a quick step slow now and then: none leaves its thread for that.
  STEP_BATCH_SOLO_MS: '5000',
  PRODUCER_BURST_CHUNKS: '1',
};

describe('resident steps (STEP_RESIDENTS): a step thread keeps the producers', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ ...RESIDENTS_ENV, STOP_GRACE_MS: '300', WORKER_MAX_HEAP_MB: '32' });
  });
  after(() => server.close());

  it('runs sessions as residents: every result once, in order, and a stop frees them', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 4; i++) clients.push((await startLockstep(server)).client);
    await eventually(() => residents(server) === 4, 'the four sessions are resident');
    await goOn(clients, 20);
    await stopAll(clients);
    assert.equal(residents(server), 0, 'a stopped session is no longer resident');
  });

  it('a consumer slow in one run stays lent: its resident is kept, never handed back and adopted again', async () => {
    const before = totals(server);
    // Chunk 30 takes the consumer 15 ms (7.5 times STEP_LEND_CONSUMER_MAX_MS, under STEP_LEND_CONSUMER_RUN_MAX_MS); the rest take microseconds.
    const { client } = await startLockstep(server, { slowFrom: 30, slowTo: 30, slowMs: 15 });
    await stoppedIfFailing(client, async () => {
      await eventually(() => residents(server) === 1, 'resident');
      await client.waitForTranscripts(50);
      await eventually(() => residents(server) === 1, 'resident after the slow run');
      // Adopted once, and again only after a take-back by the watchdog (a step overdue on a busy
      // machine), never after a hand-back for the slow run.
      const now = totals(server);
      assert.equal(now.adopted - before.adopted, 1 + (now.takenBack - before.takenBack), 'adopted once, not handed back');
    });
    await stopAll([client]);
  });

  it('a consumer slow run after run is handed back and runs in tasks of its own, every result once and in order', async () => {
    const { client } = await startLockstep(server, { slowFrom: 30, slowTo: 1_000_000, slowMs: 5 });
    await stoppedIfFailing(client, async () => {
      await eventually(() => residents(server) === 1, 'resident');
      await client.waitForTranscripts(30);
      await eventually(() => residents(server) === 0, 'handed back once its consumer was judged slow');
      const adopted = totals(server).adopted;
      await goOn([client], 15);
      assert.equal(totals(server).adopted, adopted, 'not adopted again while its consumer stays slow');
      assert.equal(residents(server), 0);
    });
    await stopAll([client]);
  });

  it('a START right after a resident session stopped is admitted', async () => {
    for (let i = 0; i < 5; i++) {
      const { client } = await startLockstep(server);
      await client.waitForTranscripts(3);
      await stopAll([client]);
      client.close();
    }
    const { client } = await startLockstep(server);
    await client.waitForTranscripts(3);
    await stopAll([client]);
  });

  it('a client that cannot take results hands its session back, and it goes on once it can', async () => {
    const { client, id } = await startLockstep(server);
    await client.waitForTranscripts(5);
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.producer.busy, 'resident');
    // Detached, the session pauses its consumer: the thread hands it back.
    const seen = client.transcripts().length;
    client.terminate();
    await eventually(() => residents(server) === 0, 'handed back when its client went');
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: session.resumeSecret, after: seen });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    await again.waitForTranscripts(10);
    await eventually(() => residents(server) === 1, 'resident again');
    await goOn([again], 10);
    assertConsecutive(again, seen + 1);
    again.send({ command: 'STOP' });
    await again.waitFor((m) => m.type === 'stopped', 'stopped');
  });

  it('a main thread busy past the stall takes back no resident that answered meanwhile', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 4; i++) clients.push((await startLockstep(server)).client);
    await eventually(() => residents(server) === 4, 'the four sessions are resident');
    await goOn(clients, 5);
    const before = totals(server);
    for (let i = 0; i < 3; i++) {
      // Three stalls (100 ms) long: the watchdog falls due while the threads' answers wait unread.
      holdMainThread(300);
      await goOn(clients, 3);
      // And once its check was asked for, the next turn is long too, in the poll phase.
      await holdTwoTurns(300);
      await goOn(clients, 3);
    }
    assert.equal(totals(server).takenBack, before.takenBack, 'no resident was taken back');
    // A resident whose consumer ran slow once (preempted) is handed back and adopted again at its
    // next step, so the count is asked for until it holds; takenBack above is what a false
    // take-back moves.
    await eventually(() => residents(server) === 4, 'all four are resident');
    await stopAll(clients);
  });

  it('a hung resident step holds only its own session: the others are taken back and go on', async () => {
    const before = totals(server);
    const { bystanders, victim, id } = await startAll(server, 'block');
    const session = server.app.sessions.get(id)!;
    await eventually(() => (session.sideInfo('producer').currentStepSeconds ?? 0) > 0.3, 'the victim is hung in its step');
    await goOn(bystanders, 10);
    assert.ok(totals(server).takenBack > before.takenBack, 'residents of the hung thread were taken back');
    // Their steps before it needed no answer: taken back, each went on from its last quiet step's state.
    assert.ok(totals(server).quietSteps > before.quietSteps, 'the bystanders stepped quietly before');
    await stopHung(victim, session);
    await goOn(bystanders, 5);
    await stopAll(bystanders);
  });

  it('a resident step whose thread dies fails only its own session: the others go on from their last answer', async () => {
    const before = totals(server);
    const { bystanders, victim } = await startAll(server, 'exit');
    await assertFailed(victim, /its worker thread exited with code 3/);
    assert.ok(totals(server).rolledBack > before.rolledBack, 'residents of the dead thread were rolled back');
    assert.ok(totals(server).quietSteps > before.quietSteps, 'the bystanders stepped quietly before');
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });

  it('a resident step that throws fails only its own session', async () => {
    const before = totals(server);
    const { bystanders, victim } = await startAll(server, 'throw');
    await assertFailed(victim, /deliberate fault in the producer/);
    assert.ok(totals(server).adopted >= before.adopted + BYSTANDERS + 1, 'every session of the six became resident');
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });
});

describe('a resident step past STEP_TIMEOUT_MS', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ ...RESIDENTS_ENV, STEP_TIMEOUT_MS: '1000' });
  });
  after(() => server.close());

  it('ends its thread and fails only its own session; the others go on with no step lost or repeated', async () => {
    const before = totals(server);
    const { bystanders, victim } = await startAll(server, 'spin');
    await assertFailed(victim, /STEP_TIMEOUT_MS \(1000 ms\)/);
    assert.ok(totals(server).takenBack > before.takenBack, 'the others were taken back from the spinning thread');
    await goOn(bystanders, 10);
    await stopAll(bystanders);
  });
});

describe("the step producers' load (STEP_RESIDENTS_MAX_LOAD): residents only while the steps are few", () => {
  let server: TestServer;
  before(async () => {
    // 500 steps a second on the one thread that takes work. A lockstep session steps on each 20 ms
    // multiple of the wall clock, 50 times a second, and now and then twice or three times in one
    // period (a wait that ends just short of the multiple): two sessions (100–300 a second) are
    // under it; twenty-four (1,200 if each steps once a period) are past it by more than the quarter
    // even when a busy machine makes them miss nearly half their periods. Residents are
    // welcome again a second after the load fell under it (STEP_RESIDENTS_LOAD_HOLD_MS).
    server = await startServer({ ...RESIDENTS_ENV, POOL_ACTIVE_THREADS: '1', STEP_RESIDENTS_MAX_LOAD: '500', STEP_RESIDENTS_LOAD_HOLD_MS: '1000', STOP_GRACE_MS: '300' });
  });
  after(() => server.close());

  it('hands every resident back once the load passes the limit, and takes them again once it falls', async () => {
    const few: TestClient[] = [];
    for (let i = 0; i < 2; i++) few.push((await startLockstep(server)).client);
    await eventually(() => residents(server) === 2, 'both sessions resident under the limit');
    const more: TestClient[] = [];
    for (let i = 0; i < 22; i++) more.push((await startLockstep(server)).client);
    await eventually(() => residents(server) === 0, 'every resident handed back past the limit');
    assert.ok((server.app.residents?.loadPerS ?? 0) > 625, 'the load counted past the limit by a quarter');
    await goOn([...few, ...more], 10);
    await stopAll(more);
    await eventually(() => residents(server) === 2, 'resident again once the load fell');
    await goOn(few, 10);
    // Every result once and in order, across both hand-overs (stopAll checks the lockstep text).
    for (const c of few) assertConsecutive(c, 1);
    await stopAll(few);
  });
});

describe('quiet resident steps (STEP_QUIET_STATE_BYTES): a step thread publishes the steps that need no answer', () => {
  let server: TestServer;
  before(async () => {
    // No periodic catch-up (nor the load's, which comes with its limit): the main thread hears of
    // quiet steps only when something asks (inspect, a RESUME, a stop), and these tests ask.
    server = await startServer({ ...RESIDENTS_ENV, STOP_GRACE_MS: '300', STEP_QUIET_CATCH_UP_MS: '60000', STEP_RESIDENTS_MAX_LOAD: '0' });
  });
  after(() => server.close());

  const metric = (series: string) => scrapedValue(server.httpUrl('/metrics'), series);

  it('every result once and in order; inspect, `stopped` and the metrics count each one', async () => {
    const before = totals(server);
    const started = await Promise.all([0, 1, 2, 3].map(() => startLockstep(server)));
    const clients = started.map((s) => s.client);
    await eventually(() => residents(server) === 4, 'the four sessions are resident');
    await goOn(clients, 30);
    // Inspect counts what the quiet steps sent up to the moment it is asked, not the last catch-up.
    const { client, id } = started[0]!;
    const had = client.transcripts().length;
    const detail = (await (await fetch(server.httpUrl(`/api/sessions/${id}`))).json()) as { counters: { produced: number; delivered: number } };
    const has = client.transcripts().length;
    assert.ok(detail.counters.delivered >= had && detail.counters.delivered <= has, `delivered ${detail.counters.delivered}, the client had ${had}–${has}`);
    assert.ok(detail.counters.produced >= detail.counters.delivered);
    // `stopped` counts every result each client got, and the texts show no step run twice or lost.
    await stopAll(clients);
    const quiet = totals(server).quietSteps - before.quietSteps;
    assert.ok(quiet >= 80, `most of the 120+ steps were quiet, and counted by the stops (${quiet})`);
    // The metrics count each result once: delivered as the clients got them, the rest at least
    // that (a step the stop caught may have written a chunk whose result was never sent).
    const total = clients.reduce((n, c) => n + c.transcripts().length, 0);
    assert.equal(await metric('tandem_results_delivered_total{pipeline="lockstep"}'), total);
    assert.equal(await metric('tandem_end_to_end_latency_seconds_count{pipeline="lockstep"}'), total);
    assert.ok((await metric('tandem_chunks_produced_total{pipeline="lockstep"}')) >= total);
    assert.ok((await metric('tandem_chunks_consumed_total{pipeline="lockstep"}')) >= total);
    assert.ok((await metric('tandem_consumer_run_seconds_count{pipeline="lockstep"}')) >= total);
    assert.ok((await metric('tandem_ws_results_sent_by_step_threads_total')) >= quiet);
    assert.equal(await metric('tandem_step_residents_quiet_steps_total'), totals(server).quietSteps);
  });

  it('a RESUME while the old connection still receives quiet results gets every later one once, in order', async () => {
    const { client, id } = await startLockstep(server);
    await eventually(() => residents(server) === 1, 'resident');
    await goOn([client], 20);
    const session = server.app.sessions.get(id)!;
    session.catchUp();
    const quietBefore = totals(server).quietSteps;
    // Stepping quietly: a resident taken back past STEP_BATCH_STALL_MS and adopted again (a busy
    // machine) answers its first steps, which is not what this test is about. (Beside two
    // spinners its steps were once answered for longer than five: one consumer run slowed by a
    // lost core handed it back, until a consumer judged slow needed several slow runs in a row.)
    for (let rounds = 0; totals(server).quietSteps === quietBefore; rounds++) {
      assert.ok(rounds < 100, 'stepping quietly');
      await goOn([client], 5);
      session.catchUp();
    }
    // Quiet steps the main thread has not heard of when the RESUME comes (none asked since).
    await goOn([client], 15);
    // The client lost its last ten frames in flight: they come again, from the log.
    const after = client.transcripts().length - 10;
    const again = await TestClient.open(server.wsUrl());
    again.send({ command: 'RESUME', session: id, resume: session.resumeSecret, after });
    await again.waitFor((m) => m.type === 'resumed', 'resumed');
    assert.equal(await client.waitClose(), 4001, 'the old connection is superseded');
    await again.waitForTranscripts(15);
    assertConsecutive(again, after + 1);
    again.send({ command: 'STOP' });
    const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped');
    // Every seq went out: to the old connection up to `after` (and the ten it lost), then to the new one.
    assert.equal(stopped.chunks, after + again.transcripts().length);
    assertConsecutive(again, after + 1);
  });

  it('a state JSON cannot carry keeps every step answered, and loses nothing', async () => {
    const before = totals(server);
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'map-state', options: { periodMs: PERIOD_MS } });
    await eventually(() => residents(server) === 1, 'resident');
    await client.waitForTranscripts(30);
    assert.equal(totals(server).quietSteps, before.quietSteps, 'no step of it was quiet');
    await stopAll([client]);
  });
});
