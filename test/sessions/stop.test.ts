import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, threadCount, type TestServer } from '../helpers/server.js';
import { ageMs, children, openFilesIn } from '../helpers/proc.js';

describe('stopping a session', () => {
  let server: TestServer;
  let baselineThreads: number;
  let baselineFds: number;
  const fdCount = () => fs.readdirSync('/proc/self/fd').length;
  before(async () => {
    // RESUME_GRACE_MS=0: a dropped connection ends its session at once (test/ws/resume.test.ts covers the window).
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      STOP_GRACE_MS: '500',
      STOP_EXIT_WAIT_MS: '5000',
      POOL_IDLE_TIMEOUT_MS: '200',
      RESUME_GRACE_MS: '0',
    });
    baselineThreads = threadCount();
    baselineFds = fdCount();
  });
  after(() => server.close());

  async function settled(): Promise<void> {
    await eventually(() => server.app.sessions.size === 0, 'no live session');
    await eventually(() => server.spools().length === 0, 'no spool folder');
    await eventually(() => threadCount() <= baselineThreads, `threads back to ${baselineThreads} (now ${threadCount()})`, 20_000);
    // Sockets of closed test clients and files held by terminated threads are all released.
    await eventually(() => fdCount() <= baselineFds, `file descriptors back to ${baselineFds} (now ${fdCount()})`, 20_000);
  }

  it('STOP ends the session: stopped, close 1000, no more results, nothing left behind', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 5 } });
    await client.waitForTranscripts(5);
    const session = server.app.sessions.get(id)!;
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assert.equal(await client.waitClose(), 1000);
    const idx = client.messages.indexOf(stopped);
    assert.equal(idx, client.messages.length - 1, 'nothing is sent after stopped');
    assertInOrder(client.transcripts());
    // stop() is idempotent: it answers with the summary once the spool is gone too.
    const summary = await session.stop('client');
    assert.equal(summary.forced, false, 'a cooperating pipeline is not forced');
    assert.equal(summary.reason, 'client');
    assert.equal(session.state, 'stopped');
    assert.equal(server.app.sessions.get(id), undefined, 'no longer live');
    await settled();
  });

  for (const how of ['abrupt', 'clean'] as const) {
    it(`an ${how} disconnect ends the session and removes its spool`, async () => {
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ pipeline: 'loop-loop', options: { intervalMs: 2 } });
      await client.waitForTranscripts(3);
      const session = server.app.sessions.get(id)!;
      if (how === 'abrupt') client.terminate();
      else client.close();
      await eventually(() => session.summary !== null, 'session ended');
      assert.equal(session.summary!.reason, 'disconnect');
      await settled();
    });
  }

  for (const where of ['step', 'loop'] as const) {
    it(`forces a ${where} that ignores the stop flag after the grace period, and the pool recovers`, async () => {
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ pipeline: 'stuck', options: { where } });
      const session = server.app.sessions.get(id)!;
      // The stuck part is running: for "step" the consumer spins on chunk 1; for "loop" the producer blocks.
      await eventually(() => session.produced >= 1, 'first chunk written');
      // Wait until the stuck code really runs: a step still queued when STOP comes is skipped, not forced.
      if (where === 'step') await eventually(() => session.sideInfo('consumer').threadId !== null, 'consumer step running');
      if (where === 'loop') await client.waitForTranscripts(1);
      client.send({ command: 'STOP' });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
      assert.equal(stopped.reason, 'client');
      assert.equal((await session.stop('client')).forced, true, 'the side was terminated, not waited on');
      await settled();
      // The pool still runs work after losing a thread.
      const next = await TestClient.open(server.wsUrl());
      await next.start({ options: { intervalMs: 0 } });
      await next.waitForTranscripts(5);
      next.send({ command: 'STOP' });
      await next.waitClose();
      await settled();
    });
  }

  it('a step that ended while the main thread was too busy to hear it is waited on, not forced', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 0 } });
    await client.waitForTranscripts(20);
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.producer.busy, 'a producer step under way');
    const stopping = session.stop('admin');
    // The main thread is held past STOP_GRACE_MS (500 ms), and until no thread runs the session's
    // code (the step ran or skipped itself for the stop flag): the grace timer then fires before
    // the step's answer can be handled. Nothing of the session runs any more, so nothing is forced.
    const heldFrom = performance.now();
    const runs = () => session.sideInfo('producer').threadId !== null || session.sideInfo('consumer').threadId !== null;
    while (performance.now() - heldFrom < 800 || runs()) {
      if (performance.now() - heldFrom > 10_000) throw new Error('a side still runs on a thread after 10 s');
    }
    assert.ok(session.producer.busy, 'the answer of the step is not handled yet when the grace timer comes due');
    const summary = await stopping;
    assert.equal(summary.forced, false, 'a step whose code had ended is not forced');
    assert.equal(summary.reason, 'admin');
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.chunks, summary.chunks);
    assertInOrder(client.transcripts());
    await client.waitClose();
    await settled();
  });

  it('a forced thread blocked in a native call has exited before `stopped` is sent', async () => {
    const client = await TestClient.open(server.wsUrl());
    const sleepMs = 2500;
    const id = await client.start({ pipeline: 'stuck', options: { where: 'native', sleepMs } });
    const session = server.app.sessions.get(id)!;
    // The consumer step is blocked in spawnSync: terminating its thread waits for the call to return.
    await eventually(() => children('sleep').length === 1, 'the consumer step blocked in its sleep child');
    // The force (STOP_GRACE_MS, 500 ms after STOP) comes while the sleep still runs: the thread outlives it.
    assert.ok(ageMs(children('sleep')[0]!) < sleepMs - 500 - 300, 'STOP goes out early enough in the sleep');
    client.send({ command: 'STOP' });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    // Terminated at STOP_GRACE_MS (500 ms), but it ran on until the sleep returned: only then is the session stopped.
    assert.deepEqual(children('sleep'), [], 'the native call (and the thread blocked in it) ended before stopped');
    assert.equal((await session.stop('client')).forced, true, 'the side was terminated, not waited on');
    await settled();
  });

  it('a result JSON cannot carry (a BigInt) fails only its own session, never the service', async () => {
    const bystander = await TestClient.open(server.wsUrl());
    await bystander.start({ options: { intervalMs: 5 } });
    const victim = await TestClient.open(server.wsUrl());
    await victim.start({ pipeline: 'throws', options: { failAt: 2, how: 'bigint' } });
    const err = await victim.waitFor((m) => m.type === 'error', 'error');
    assert.equal(err.code, 'PIPELINE_FAILED');
    assert.match(err.message!, /result for chunk 2 cannot be sent as JSON/);
    const stopped = await victim.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.deepEqual([stopped.reason, stopped.chunks], ['failed', 1]);
    const before = bystander.transcripts().length;
    await bystander.waitForTranscripts(before + 3);
    assertInOrder(bystander.transcripts());
    bystander.send({ command: 'STOP' });
    await bystander.waitClose();
    await settled();
  });

  it('a pipeline that throws ends only its own session, with the cause before stopped', async () => {
    const bystander = await TestClient.open(server.wsUrl());
    await bystander.start({ options: { intervalMs: 5 } });
    const victim = await TestClient.open(server.wsUrl());
    const id = await victim.start({ pipeline: 'throws', options: { failAt: 3 } });
    const err = await victim.waitFor((m) => m.type === 'error', 'error');
    assert.equal(err.code, 'PIPELINE_FAILED');
    assert.match(err.message!, /consumer of pipeline "throws" failed: boom at chunk 3/);
    const stopped = await victim.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.deepEqual({ session: stopped.session, reason: stopped.reason, chunks: stopped.chunks }, { session: id, reason: 'failed', chunks: 2 });
    assert.ok(victim.messages.indexOf(err) < victim.messages.indexOf(stopped), 'error comes before stopped');
    assert.deepEqual(victim.transcripts().map((t) => t.data), [1, 2]);
    assert.equal(await victim.waitClose(), 1011);
    // The bystander keeps streaming after the failure.
    const before = bystander.transcripts().length;
    await bystander.waitForTranscripts(before + 5);
    assertInOrder(bystander.transcripts());
    bystander.send({ command: 'STOP' });
    await bystander.waitClose();
    await settled();
  });
});

describe('a forced thread that outlives STOP_EXIT_WAIT_MS', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, STOP_GRACE_MS: '100', STOP_EXIT_WAIT_MS: '100' });
  });
  after(() => server.close());

  it('does not hold up the stop; the files its session held stay open until the thread has exited', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'stuck', options: { where: 'native', sleepMs: 6000 } });
    const session = server.app.sessions.get(id)!;
    const dir = session.spoolDir;
    await eventually(() => children('sleep').length === 1, 'the consumer step blocked in its sleep child');
    // The step consumer appends to its results log through a descriptor the main thread holds.
    const held = () => openFilesIn(dir).filter((f) => path.basename(f).startsWith('r-'));
    assert.equal(held().length, 1, 'the results segment is held open');
    client.send({ command: 'STOP' });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(children('sleep').length, 1, 'stopped came while the thread was still blocked (a stop always finishes)');
    assert.equal(held().length, 1, 'its descriptor is not closed while the thread could still write through it');

    // Another forced session meanwhile waits only for its own thread, not for the blocked one.
    const other = await TestClient.open(server.wsUrl());
    const otherId = await other.start({ pipeline: 'stuck', options: { where: 'step' } });
    const otherSession = server.app.sessions.get(otherId)!;
    const otherDir = otherSession.spoolDir;
    await eventually(() => otherSession.sideInfo('consumer').threadId !== null, 'the other consumer step spinning');
    other.send({ command: 'STOP' });
    await other.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal((await otherSession.stop('client')).forced, true);
    await eventually(() => openFilesIn(otherDir).length === 0, "the other session's descriptors closed");
    assert.equal(children('sleep').length, 1, 'while the first thread is still blocked');

    await eventually(() => children('sleep').length === 0, 'the sleep returned', 15_000);
    await eventually(() => openFilesIn(dir).length === 0, 'every descriptor on the spool closed once the thread exited');
    await eventually(() => server.spools().length === 0, 'spool removed');
  });
});

describe('a thread ended by STEP_TIMEOUT_MS while blocked in a native call', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, STEP_TIMEOUT_MS: '300', STOP_EXIT_WAIT_MS: '100' });
  });
  after(() => server.close());

  it('fails its session at once; the files its session held stay open until the thread has exited', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ pipeline: 'stuck', options: { where: 'native', sleepMs: 6000 } });
    const dir = server.app.sessions.get(id)!.spoolDir;
    await eventually(() => children('sleep').length === 1, 'the consumer step blocked in its sleep child');
    const held = () => openFilesIn(dir).filter((f) => path.basename(f).startsWith('r-'));
    assert.equal(held().length, 1, 'the results segment is held open');
    // No STOP: the time limit ends the step, and the session fails without being forced.
    const err = await client.waitFor((m) => m.type === 'error', 'error');
    assert.match(err.message!, /its step ran longer than STEP_TIMEOUT_MS \(300 ms\) and its thread was ended/);
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'failed');
    assert.equal(children('sleep').length, 1, 'stopped came while the thread was still blocked');
    assert.equal(held().length, 1, 'its descriptor is not closed while the thread could still write through it');

    await eventually(() => children('sleep').length === 0, 'the sleep returned', 15_000);
    await eventually(() => openFilesIn(dir).length === 0, 'every descriptor on the spool closed once the thread exited');
    await eventually(() => server.spools().length === 0, 'spool removed');
  });
});

describe('a step still waiting for a thread when the grace ends', () => {
  let server: TestServer;
  before(async () => {
    // One step thread, taken by a step that never returns.
    server = await startServer({
      PIPELINES_DIR: FIXTURE_PIPELINES,
      STOP_GRACE_MS: '300',
      POOL_MAX_THREADS: '1',
      POOL_MIN_THREADS: '1',
      SPOOL_REMOVAL_THREAD_WAIT_MS: '200',
    });
  });
  after(() => server.close());

  it('is waited on up to twice STOP_GRACE_MS, then taken back; its folder is removed without a thread: the stop finishes', async () => {
    const hog = await TestClient.open(server.wsUrl());
    const hogId = await hog.start({ pipeline: 'stuck', options: { where: 'step' } });
    const hogSession = server.app.sessions.get(hogId)!;
    await eventually(() => hogSession.sideInfo('consumer').threadId !== null, 'the only step thread spinning');
    const waiting = await TestClient.open(server.wsUrl());
    const id = await waiting.start({ options: { intervalMs: 0 } });
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.producer.busy, 'its first step sent');
    assert.equal(session.produced, 0, 'its step waits for the busy thread');
    const stopSentAt = performance.now();
    waiting.send({ command: 'STOP' });
    const stopped = await waiting.waitFor((m) => m.type === 'stopped', 'stopped');
    const stopToStoppedMs = performance.now() - stopSentAt;
    assert.deepEqual([stopped.reason, stopped.chunks], ['client', 0]);
    assert.ok(stopToStoppedMs >= 600, `waited twice the grace first (STOP → stopped ${stopToStoppedMs} ms)`);
    // No step thread takes its folder's removal (SPOOL_REMOVAL_THREAD_WAIT_MS): the main thread removes it.
    await eventually(() => session.state === 'stopped', 'the session ended, its folder removed, while the only thread stays held', 10_000);
    const summary = await session.stop('client');
    assert.equal(summary.forced, true, 'its step was taken back, never run');
    assert.equal(session.state, 'stopped');
    assert.equal(fs.existsSync(session.spoolDir), false, 'its spool folder is gone');
    assert.notEqual(hogSession.sideInfo('consumer').threadId, null, "the other session's step was left running");
    assert.equal(hogSession.state, 'running');
    hog.send({ command: 'STOP' });
    await hog.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal((await hogSession.stop('client')).forced, true);
    await eventually(() => server.spools().length === 0, 'spools removed');
  });
});
