import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ClaimSlab } from '../../src/pool/claims.js';
import { FlagsSlab } from '../../src/pool/flags.js';
import { WorkerPool } from '../../src/pool/worker-pool.js';
import { StepBatcher } from '../../src/pool/step-batcher.js';
import { StepChannels } from '../../src/pool/step-channels.js';
import type { ProduceStepTask, ResidentAdopt, ResidentRelease } from '../../src/pool/messages.js';
import type { MessagePort } from 'node:worker_threads';
import { eventually } from '../helpers/server.js';
import { holdMainThread } from '../helpers/event-loop.js';

function newPool(over: { minThreads: number; maxThreads: number; idleTimeoutMs: number }): WorkerPool {
  return new WorkerPool(
    { loopMaxThreads: 1, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000, ...over },
    { flagsSlab: new FlagsSlab(4).buffer, claimSlab: new ClaimSlab(8).buffer, batchAnswerUs: 0, stepTickMs: 5 },
    () => {},
  );
}

/**
 * Runs `body` (JavaScript, top-level await) in a process of its own, after a prelude that imports
 * the pool's modules and defines `newSlabPool(minThreads, maxThreads, idleTimeoutMs, batchAnswerUs = 0)`,
 * returning `{ pool, flags, claims }` as the app makes them. Killed after 15 s.
 */
async function runInChild(body: string): Promise<{ out: string; code: number | null; signal: string | null }> {
  const module = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));
  const script = `
    const { WorkerPool } = await import(${module('../../src/pool/worker-pool.js')});
    const { FlagsSlab } = await import(${module('../../src/pool/flags.js')});
    const { ClaimSlab } = await import(${module('../../src/pool/claims.js')});
    const { StepBatcher } = await import(${module('../../src/pool/step-batcher.js')});
    const newSlabPool = (minThreads, maxThreads, idleTimeoutMs, batchAnswerUs = 0) => {
      const flags = new FlagsSlab(4);
      const claims = new ClaimSlab(8);
      const options = { minThreads, maxThreads, idleTimeoutMs, loopMaxThreads: 1, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 };
      return { pool: new WorkerPool(options, { flagsSlab: flags.buffer, claimSlab: claims.buffer, batchAnswerUs, stepTickMs: 5 }, () => {}), flags, claims };
    };
    ${body}
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  return { out, code, signal };
}

describe('step channels: how the step pool threads are held and fed', () => {
  it('opens a channel per thread a turn needs, and closes those above the minimum once idle', async () => {
    // The idle timeout is long enough for the second thread to start on a loaded machine before
    // the first channel, idle once it answered, closes.
    const pool = newPool({ minThreads: 1, maxThreads: 2, idleTimeoutMs: 3000 });
    try {
      // Two removals at once need two threads: both run, each on a channel of its own.
      const removals = await Promise.all([pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result, pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result]);
      assert.deepEqual(
        removals.map((r) => r.errors),
        [[], []],
      );
      await eventually(() => pool.stats().stepThreads === 2, 'two step threads while both channels are open', 5000);
      assert.equal(pool.stats().completed, 2);
      assert.equal(pool.stats().busy, 0, 'an idle channel holds its thread without counting it busy');
      assert.equal(pool.stats().idle, 2);
      // The channel above POOL_MIN_THREADS closes after the idle timeout; Piscina ends its thread
      // after its own.
      await eventually(() => pool.stats().stepThreads === 1, 'back to POOL_MIN_THREADS step threads', 20_000);
      assert.equal(await pool.canRunWork(2000), true, 'the channel kept still runs work');
      const { runTime, waitTime } = pool.histogram('step');
      assert.ok(runTime.max > 0 && Number.isFinite(runTime.p99), `run times recorded: ${JSON.stringify(runTime)}`);
      assert.ok(Number.isFinite(waitTime.mean), `wait times recorded: ${JSON.stringify(waitTime)}`);
    } finally {
      await pool.close();
    }
  });

  it('rejects work once the pool is closed instead of waiting forever', async () => {
    const pool = newPool({ minThreads: 1, maxThreads: 1, idleTimeoutMs: 1000 });
    await pool.close();
    await assert.rejects(pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result, /the pool is closed/);
    assert.equal(await pool.canRunWork(500), false);
  });

  it('takes back a job no thread has begun, and leaves one that runs to run', async () => {
    const pool = newPool({ minThreads: 1, maxThreads: 1, idleTimeoutMs: 1000 });
    try {
      // Its channel is open and idle: the next job goes to it at once, the one after it waits.
      assert.deepEqual((await pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result).errors, []);
      const running = pool.removeSpools({ kind: 'remove-spools', dirs: [] });
      const waiting = pool.removeSpools({ kind: 'remove-spools', dirs: [] });
      assert.equal(pool.stats().queueDepth, 1);
      assert.equal(waiting.withdraw(), true, 'a queued job is taken back');
      assert.equal(waiting.withdraw(), false, 'only once');
      assert.equal(running.withdraw(), false, 'a job a thread has is left to run');
      await assert.rejects(waiting.result, { name: 'JobWithdrawnError' });
      assert.deepEqual((await running.result).errors, []);
      assert.equal(pool.stats().queueDepth, 0);
    } finally {
      await pool.close();
    }
  });

  it('a step sent to a closed pool fails instead of being sent again every turn', async () => {
    const flags = new FlagsSlab(4);
    const claims = new ClaimSlab(8);
    const pool = new WorkerPool(
      { minThreads: 1, maxThreads: 1, loopMaxThreads: 1, idleTimeoutMs: 1000, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 },
      { flagsSlab: flags.buffer, claimSlab: claims.buffer, batchAnswerUs: 0, stepTickMs: 5 },
      () => {},
    );
    const batcher = new StepBatcher(pool, { maxEntries: 64, spreadMin: 8, stallMs: 100, soloMs: 10, timeoutMs: 0 }, { flags: flags.buffer, claims });
    const step = { kind: 'consume-step' as const, sessionId: 's', flagsSlot: 1, state: undefined, seqs: [1] };
    let run: ReturnType<StepBatcher['run']> | undefined;
    try {
      await pool.close();
      const ended = new Promise<string>((resolve) => {
        run = batcher.run(step, (result, err) => resolve(result ? 'answered' : err instanceof Error ? err.message : String(err)));
      });
      const sent = await Promise.race([
        ended,
        new Promise<string>((resolve) => setTimeout(resolve, 5000, 'still being sent after 5 s')),
      ]);
      assert.equal(sent, 'the pool is closed');
    } finally {
      // Ends a step still being sent (what this test would find without the fix).
      run?.abort(new Error('the test is over'));
      batcher.close();
    }
  });

  it("a side whose handler throws does not leave the other steps of its task unheard", async () => {
    // In a process of its own: the handler's error is thrown again as an uncaught exception,
    // which this script records (the test runner would take it for its own test's failure).
    const { out, code, signal } = await runInChild(`
      const { pool, flags, claims } = newSlabPool(1, 1, 1000);
      const batcher = new StepBatcher(pool, { maxEntries: 64, spreadMin: 8, stallMs: 10000, soloMs: 10000, timeoutMs: 0 }, { flags: flags.buffer, claims });
      const heard = [];
      const rethrown = new Promise((resolve) => process.once('uncaughtException', (err) => resolve(err.message)));
      // Two sessions the thread has no description of: both steps fail on the thread, in one task.
      const step = (slot) => ({ kind: 'consume-step', sessionId: 's' + slot, flagsSlot: slot, state: undefined, seqs: [1] });
      const second = new Promise((resolve) => {
        batcher.run(step(1), () => {
          heard.push('s1');
          throw new Error('a bug in the first side');
        });
        batcher.run(step(2), (result, err) => {
          heard.push('s2: ' + (result ? 'answered' : err.message));
          resolve();
        });
      });
      await second;
      console.log(JSON.stringify({ heard, rethrown: await rethrown }));
      batcher.close();
      await pool.close();
    `);
    assert.equal(signal, null, `the second step was not heard (killed after 15 s; it printed ${JSON.stringify(out)})`);
    assert.equal(code, 0);
    const { heard, rethrown } = JSON.parse(out) as { heard: string[]; rethrown: string };
    assert.equal(heard[0], 's1');
    assert.match(heard[1]!, /^s2: .*session s2 came without its description/);
    // The first side's error is not swallowed: it is thrown again on its own.
    assert.equal(rethrown, 'a bug in the first side');
  });

  it('a task answered in parts tells each step once, as soon as its part arrives', async () => {
    // STEP_BATCH_ANSWER_US of 1 µs: the thread posts after every step but the last, whose
    // outcome comes with the task's last answer. Three sessions the thread has no description
    // of: each step fails on the thread, in one task.
    const { out, code, signal } = await runInChild(`
      const { pool, flags, claims } = newSlabPool(1, 1, 1000, 1);
      const parts = [];
      const runBatch = pool.runBatch.bind(pool);
      pool.runBatch = (task, onPart) => runBatch(task, (part) => {
        parts.push(part.outcomes.map((o) => (o ? 'x' : '-')).join(''));
        onPart(part);
      });
      const batcher = new StepBatcher(pool, { maxEntries: 64, spreadMin: 8, stallMs: 10000, soloMs: 10000, timeoutMs: 0 }, { flags: flags.buffer, claims });
      const heard = [];
      const step = (slot) => ({ kind: 'consume-step', sessionId: 's' + slot, flagsSlot: slot, state: undefined, seqs: [1] });
      await Promise.all([1, 2, 3].map((slot) => new Promise((resolve) => {
        batcher.run(step(slot), (result, err) => {
          heard.push('s' + slot + ' after ' + parts.length + ' parts: ' + (result ? 'answered' : err.message));
          resolve();
        });
      })));
      await new Promise((resolve) => setTimeout(resolve, 100));
      console.log(JSON.stringify({ parts, heard, completed: pool.stats().completed }));
      batcher.close();
      await pool.close();
    `);
    assert.equal(signal, null, `a step was not heard (killed after 15 s; it printed ${JSON.stringify(out)})`);
    assert.equal(code, 0);
    const { parts, heard, completed } = JSON.parse(out) as { parts: string[]; heard: string[]; completed: number };
    assert.deepEqual(parts, ['x--', '-x-'], 'one part for each step before the last, carrying only that step');
    assert.equal(heard.length, 3, `each step told once: ${JSON.stringify(heard)}`);
    // The first two steps are told as their parts arrive, the last with the task's last answer.
    [1, 2, 2].forEach((partsBefore, i) =>
      assert.match(heard[i]!, new RegExp(`^s${i + 1} after ${partsBefore} parts: .*session s${i + 1} came without its description`)),
    );
    assert.equal(completed, 1, 'the parts are one task: it completes once, with its last answer');
  });

  it('closing the pool ends its open channels: the process then exits by itself', async () => {
    // An open channel holds its thread (and the process) until the pool is closed.
    const { out, code, signal } = await runInChild(`
      const { pool } = newSlabPool(2, 2, 60000);
      await Promise.all([pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result, pool.removeSpools({ kind: 'remove-spools', dirs: [] }).result]);
      console.log('ran', pool.stats().completed);
      await pool.close();
    `);
    assert.equal(out.trim(), 'ran 2');
    assert.equal(signal, null, 'the process ended by itself after close() (it was killed after 15 s)');
    assert.equal(code, 0);
  });
});

describe("step channels: what the main thread asks of a step thread's residents", () => {
  /** Channels whose "thread" is this test: it reads what each channel posts, in order. */
  function channelsReadHere() {
    const received: unknown[] = [];
    const ports: MessagePort[] = [];
    const channels = new StepChannels(
      {
        runHeld: (task) => {
          ports.push(task.port);
          task.port.on('message', (m: unknown) => received.push(m));
          return new Promise(() => {});
        },
        threadDied: () => {},
      },
      { minChannels: 1, maxChannels: 1, idleTimeoutMs: 60_000 },
    );
    const close = () => {
      channels.close();
      for (const p of ports) p.close();
    };
    return { channels, received, close };
  }

  const adopt = (token: number) => ({ kind: 'adopt', token, step: {} as ProduceStepTask, dueAt: 0, rateSlackMs: 0 }) satisfies ResidentAdopt;
  const release = (token: number) => ({ kind: 'release', token }) satisfies ResidentRelease;

  it("posts one turn's adoptions and releases to a thread as one message, in the order asked", async () => {
    const { channels, received, close } = channelsReadHere();
    try {
      const place = channels.placeResident(10)!;
      // A storm of STOPs: every release of the turn, and an adoption between them.
      for (const m of [release(1), release(2), adopt(3), release(3), release(4)]) channels.postResident(place, m);
      await new Promise((r) => setImmediate(r));
      await eventually(() => received.length > 0, 'the channel posted');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(received, [{ kind: 'residents', messages: [release(1), release(2), adopt(3), release(3), release(4)] }]);
    } finally {
      close();
    }
  });

  it('posts what it was asked before a job given in the same turn', async () => {
    const { channels, received, close } = channelsReadHere();
    try {
      const place = channels.placeResident(10)!;
      channels.postResident(place, release(7));
      void channels.run({ kind: 'probe' }).result.catch(() => {});
      await eventually(() => received.length === 2, 'both posted');
      assert.deepEqual(received, [{ kind: 'residents', messages: [release(7)] }, { kind: 'probe' }]);
    } finally {
      close();
    }
  });
});

describe('step channels: active threads and spares (POOL_ACTIVE_THREADS)', () => {
  const HELD_AFTER_MS = 150;

  /** Two channels at most, one active; the test is the threads and never answers. */
  function oneActive() {
    const received: Array<{ channel: number; kind: string }> = [];
    const ports: MessagePort[] = [];
    const channels = new StepChannels(
      {
        runHeld: (task) => {
          ports.push(task.port);
          const channel = ports.length;
          task.port.on('message', (m: { kind: string }) => received.push({ channel, kind: m.kind }));
          return new Promise(() => {});
        },
        threadDied: () => {},
      },
      { minChannels: 1, maxChannels: 2, idleTimeoutMs: 60_000, activeChannels: 1, heldAfterMs: HELD_AFTER_MS },
    );
    return {
      channels,
      received,
      ports,
      close: () => {
        channels.close();
        for (const p of ports) p.close();
      },
    };
  }

  it('gives work to the active thread only, and to a spare once that thread is held past the stall', async () => {
    const { channels, received, ports, close } = oneActive();
    try {
      const began = Date.now();
      void channels.run({ kind: 'probe' }).result.catch(() => {});
      void channels.run({ kind: 'probe' }).result.catch(() => {});
      // A resident asked for meanwhile goes to the active thread too: the spare stays closed.
      const place = channels.placeResident(10);
      assert.ok(place, 'the active thread takes a resident');
      await eventually(() => received.length === 1, 'the first job posted');
      await new Promise((r) => setTimeout(r, HELD_AFTER_MS / 3));
      assert.equal(ports.length, 1, 'no spare opened while the active thread is not held');
      assert.equal(channels.held, 0, 'a job under the stall does not hold its thread');
      assert.deepEqual(received, [{ channel: 1, kind: 'probe' }], 'the second job waits for the active thread');
      // The first job has now run past the stall: its thread counts as held, a spare takes the queue.
      await eventually(() => received.length === 2, 'the second job posted to a spare', 5000);
      assert.ok(Date.now() - began >= HELD_AFTER_MS, 'not before the active thread was held');
      assert.deepEqual(received[1], { channel: 2, kind: 'probe' });
      assert.equal(ports.length, 2);
      assert.equal(channels.held, 1, 'the active thread counts as held (GET /api/pool heldThreads)');
    } finally {
      close();
    }
  });

  it('a job that answered while the main thread was busy past the stall leaves its thread active: work asked for then waits for that answer', async () => {
    const { channels, received, ports, close } = oneActive();
    try {
      const first = channels.run({ kind: 'probe' }).result;
      await eventually(() => received.length === 1, 'the first job posted');
      // The thread answers at once; the main thread reads that answer only after a turn longer
      // than the stall, in which more work is asked for.
      ports[0]!.postMessage({ ok: { threadId: 1 } });
      holdMainThread(HELD_AFTER_MS * 2);
      const second = channels.run({ kind: 'probe' }).result;
      assert.equal(channels.held, 0, 'a job whose answer waits unread does not hold its thread');
      await first;
      await eventually(() => received.length === 2, 'the second job posted');
      assert.deepEqual(received[1], { channel: 1, kind: 'probe' }, 'the second job went to the thread that answered');
      assert.equal(ports.length, 1, 'no spare opened');
      ports[0]!.postMessage({ ok: { threadId: 1 } });
      await second;
    } finally {
      close();
    }
  });

  it('never opens more than the maximum: with both threads held, work waits', async () => {
    const { channels, received, ports, close } = oneActive();
    try {
      for (let i = 0; i < 3; i++) void channels.run({ kind: 'probe' }).result.catch(() => {});
      await eventually(() => received.length === 2, 'two jobs posted, one a thread', 5000);
      // Both held once the watchdog judged the spare's job past the stall too (it judges as of a
      // moment a turn old, on its own period: on a busy machine that can be well past 2 stalls).
      await eventually(() => channels.held === 2, 'both threads held', 5000);
      await new Promise((r) => setTimeout(r, HELD_AFTER_MS));
      assert.equal(ports.length, 2, 'no third thread');
      assert.equal(received.length, 2, 'the third job waits for a thread to answer');
      assert.equal(channels.queued, 1);
    } finally {
      close();
    }
  });
});
