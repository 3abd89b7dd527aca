import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient, type ServerMessage } from '../helpers/client.js';
import { LogCapture } from '../helpers/logs.js';
import { api, endedSession } from '../helpers/openapi.js';
import { eventually, FIXTURE_PIPELINES, startServer, threadCount, type TestServer } from '../helpers/server.js';

/** Step pool size of this server; the OOM cases need a small heap cap so they die fast. */
const POOL_THREADS = 2;
const HEAP_MB = 32;

interface Failing {
  pipeline: string;
  side: 'producer' | 'consumer';
  fault: string;
  cause: RegExp;
}

interface Stuck {
  pipeline: string;
  side: 'producer' | 'consumer';
  fault: string;
  stop: 'client' | 'admin';
}

/** Faults that end the session by themselves: the client must be told why. */
const FAILING: readonly Failing[] = [
  { pipeline: 'faulty', side: 'producer', fault: 'throw', cause: /deliberate fault in the producer/ },
  { pipeline: 'faulty-loop', side: 'consumer', fault: 'throw', cause: /deliberate fault in the consumer/ },
  { pipeline: 'faulty', side: 'consumer', fault: 'exit', cause: /its worker thread exited with code 3 \(process\.exit\(\)/ },
  { pipeline: 'faulty-loop', side: 'producer', fault: 'exit', cause: /its worker thread exited with code 3 \(process\.exit\(\)/ },
  { pipeline: 'faulty', side: 'producer', fault: 'oom', cause: new RegExp(`its worker thread ran out of memory \\(reached the ${HEAP_MB} MiB heap cap of WORKER_MAX_HEAP_MB\\)`) },
  { pipeline: 'faulty-loop', side: 'consumer', fault: 'oom', cause: /its worker thread ran out of memory/ },
];

/** Faults that never end by themselves: the session runs until stopped, and the stop is forced. */
const STUCK: readonly Stuck[] = [
  { pipeline: 'faulty', side: 'consumer', fault: 'spin', stop: 'client' },
  { pipeline: 'faulty-loop', side: 'producer', fault: 'spin', stop: 'admin' },
  { pipeline: 'faulty', side: 'producer', fault: 'block', stop: 'admin' },
  { pipeline: 'faulty-loop', side: 'consumer', fault: 'block', stop: 'client' },
];

/** This suite's STEP_TIMEOUT_MS: a step that spins or blocks is ended after it. */
const STEP_TIMEOUT_MS = 1500;
const TIMED_OUT = new RegExp(`its step ran longer than STEP_TIMEOUT_MS \\(${STEP_TIMEOUT_MS} ms\\) and its thread was ended`);

/** Steps that never end by themselves, on a server with a step time limit: the limit ends them, and their sessions fail. */
const TIMED_OUT_STEPS: readonly Failing[] = [
  // The consumer is lent to its producer's step (a quick one at first): the step it spins in is the producer's task.
  { pipeline: 'faulty', side: 'consumer', fault: 'spin', cause: TIMED_OUT },
  { pipeline: 'faulty', side: 'producer', fault: 'block', cause: TIMED_OUT },
];

/** REST calls close their connection, so a kept-alive socket never counts as a leaked descriptor. */
const once = { headers: { connection: 'close' } };
const fdCount = () => fs.readdirSync('/proc/self/fd').length;
const timerCount = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
/**
 * The most timers held at once over `ms`, read every 5 ms. With the bystanders streaming, the
 * service's count moves between 0 and 2 by itself (the step wheel's timer while a step waits,
 * the batcher's watchdog while a task runs): one reading is a moment, not a baseline. A run on
 * 2026-12-03 read 0 before the faults and then never saw 0 again in 15 s under load. A timer
 * left behind raises the peak for good, so it still fails the check.
 */
async function timersPeak(ms = 1000): Promise<number> {
  let peak = 0;
  for (const end = Date.now() + ms; Date.now() < end; ) {
    peak = Math.max(peak, timerCount());
    await new Promise((r) => setTimeout(r, 5));
  }
  return peak;
}

describeFaults('faults inside pipelines', {}, FAILING, STUCK);
describeFaults(`steps that run past STEP_TIMEOUT_MS (${STEP_TIMEOUT_MS} ms)`, { STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS) }, TIMED_OUT_STEPS, []);

/** A server with `env` (beside this file's own), two bystanders, and every case of `failing` and `stuck` against them. */
function describeFaults(title: string, env: Record<string, string>, failing: readonly Failing[], stuck: readonly Stuck[]): void {
  describe(title, () => {
    let server: TestServer;
    let base: string;
    const logs = new LogCapture();
    /** Sessions that run through every fault and must never miss a beat. */
    let bystanders: TestClient[];
    let baseline: { threads: number; fds: number; timers: number };

    before(async () => {
      server = await startServer(
        {
          PIPELINES_DIR: FIXTURE_PIPELINES,
          POOL_MAX_THREADS: String(POOL_THREADS),
          WORKER_MAX_HEAP_MB: String(HEAP_MB),
          STOP_GRACE_MS: '300',
          POOL_IDLE_TIMEOUT_MS: '200',
          LOG_LEVEL: 'info',
          ...env,
        },
        { logs },
      );
      base = server.httpUrl('');
      // One bystander of each shape: faults on the step pool and on the loop pool both have a neighbour.
      bystanders = await Promise.all([TestClient.open(server.wsUrl()), TestClient.open(server.wsUrl())]);
      await bystanders[0]!.start({ options: { intervalMs: 10 } });
      await bystanders[1]!.start({ pipeline: 'loop-loop', options: { intervalMs: 10 } });
      await Promise.all(bystanders.map((b) => b.waitForTranscripts(3)));
      baseline = { threads: threadCount(), fds: fdCount(), timers: await timersPeak() };
    });

    after(async () => {
      for (const b of bystanders) b.send({ command: 'STOP' });
      await Promise.all(bystanders.map((b) => b.waitClose()));
      await server.close();
    });

    /** The victim is gone without a trace, the pool is whole again, and both bystanders stream on in order. */
    async function nothingLeftBehind(victimSpool: string, bystanderCounts: number[]): Promise<void> {
      await eventually(() => server.app.sessions.size === bystanders.length, 'only the bystanders live');
      await eventually(() => !fs.existsSync(victimSpool), 'the victim spool is removed');
      await eventually(async () => {
        const pool = (await api(base, 'GET', '/api/pool', once)).body;
        // The step pool is fixed; the loop pool holds exactly the bystander's two loop sides.
        return pool.threads.total === POOL_THREADS + 2 && pool.threads.heldByLoops === 2;
      }, `pool back to ${POOL_THREADS} step threads + 2 loop threads (now ${JSON.stringify(server.app.pool.stats())})`);
      await eventually(() => threadCount() <= baseline.threads, `threads back to ${baseline.threads} (now ${threadCount()})`, 20_000);
      await eventually(() => fdCount() <= baseline.fds, `file descriptors back to ${baseline.fds} (now ${fdCount()})`, 20_000);
      let peak = Infinity;
      await eventually(async () => (peak = await timersPeak(500)) <= baseline.timers, `timers held at once back to at most ${baseline.timers}`).catch((err: Error) => {
        throw new Error(`${err.message} (the last half second's peak: ${peak})`);
      });
      await Promise.all(bystanders.map((b, i) => b.waitForTranscripts(bystanderCounts[i]! + 5)));
      for (const b of bystanders) {
        assertInOrder(b.transcripts());
        assert.deepEqual(b.messages.filter((m) => m.type !== 'transcript' && m.type !== 'started'), [], 'a bystander got only transcripts');
      }
    }

    for (const c of failing) {
      it(`a ${c.pipeline} ${c.side} that does "${c.fault}" fails only its own session, with the cause on the wire, in inspect and in the log`, async () => {
        const counts = bystanders.map((b) => b.transcripts().length);
        const victim = await TestClient.open(server.wsUrl());
        const id = await victim.start({ pipeline: c.pipeline, options: { fault: c.fault, side: c.side } });
        const spool = server.app.sessions.find(id)!.spoolDir;

        const err = await victim.waitFor((m) => m.type === 'error', 'error');
        const stopped = await victim.waitFor((m) => m.type === 'stopped', 'stopped');
        assert.equal(err.code, 'PIPELINE_FAILED');
        assert.match(err.message!, new RegExp(`^${c.side} of pipeline "${c.pipeline}" failed: `));
        assert.match(err.message!, c.cause);
        assert.ok(victim.messages.indexOf(err) < victim.messages.indexOf(stopped), 'error comes before stopped');
        assert.equal(stopped.session, id);
        assert.equal(stopped.reason, 'failed');
        assert.equal(stopped.chunks, victim.transcripts().length);
        assertInOrder(victim.transcripts());
        assert.equal(await victim.waitClose(), 1011);
        assert.deepEqual(victim.invalid, []);

        // The client is told first; the session counts as ended once its folder is gone, a moment later.
        const inspect = await endedSession(base, id);
        assert.equal(inspect.state, 'failed');
        assert.equal(inspect.endReason, 'failed');
        assert.match(inspect.error, c.cause);
        assert.match(inspect[c.side].lastError, c.cause);
        assert.equal(inspect[c.side].state, 'failed');

        const logged = logs.matching({ session: id, msg: 'pipeline failed' });
        assert.equal(logged.length, 1, 'the failure is logged once');
        assert.equal(logged[0]!.side, c.side);
        assert.match(String(logged[0]!.err), c.cause);
        assert.equal(logs.matching({ session: id, msg: 'session ended', reason: 'failed' }).length, 1);
        if (c.cause === TIMED_OUT) {
          const timeouts = (await (await fetch(server.httpUrl('/metrics'), once)).text()).match(/^tandem_step_timeouts_total (\d+)$/m);
          assert.equal(Number(timeouts?.[1]), failing.indexOf(c) + 1, 'the time limit counted this step');
        }

        await nothingLeftBehind(spool, counts);
      });
    }

    for (const c of stuck) {
      it(`a ${c.pipeline} ${c.side} that does "${c.fault}" runs until ${c.stop === 'admin' ? 'an admin' : 'a client'} stop, which is forced after the grace period`, async () => {
        const counts = bystanders.map((b) => b.transcripts().length);
        const victim = await TestClient.open(server.wsUrl());
        const id = await victim.start({ pipeline: c.pipeline, options: { fault: c.fault, side: c.side } });
        const spool = server.app.sessions.find(id)!.spoolDir;
        // The fixture leaves this marker just before it spins or blocks: from then on nothing but a forced stop ends it.
        const marker = path.join(os.tmpdir(), `tandem-fault-${id}`);
        await eventually(() => fs.existsSync(marker), 'the fault has struck');
        fs.rmSync(marker);

        let summary;
        if (c.stop === 'client') {
          victim.send({ command: 'STOP' });
        } else {
          const res = await api(base, 'POST', `/api/sessions/${id}/stop`, once);
          assert.equal(res.status, 200);
          summary = res.body;
          assert.equal(summary.reason, 'admin');
          assert.equal(summary.forced, true);
        }
        const stopped = await victim.waitFor((m: ServerMessage) => m.type === 'stopped', 'stopped');
        assert.equal(stopped.reason, c.stop);
        assert.equal(await victim.waitClose(), 1000);
        assert.deepEqual(victim.messages.filter((m) => m.type === 'error'), [], 'a stopped session is not a failed one');
        assertInOrder(victim.transcripts());

        const inspect = await endedSession(base, id);
        assert.equal(inspect.state, 'stopped');
        assert.equal(inspect.endReason, c.stop);
        assert.equal(inspect.summary.forced, true, 'the thread was terminated, not waited on');
        assert.equal(inspect[c.side].threadId, null);
        assert.ok(inspect.counters.produced >= 2, 'the victim ran normally before the fault');
        assert.equal(logs.matching({ session: id, msg: 'session ended', reason: c.stop, forced: true }).length, 1);

        await nothingLeftBehind(spool, counts);
      });
    }
  });
}
