/**
 * When a watchdog judges the step threads' answers (pool/after-answers.ts): after those posted
 * during a long turn of the main thread are read, even when that turn is in the poll phase.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAnswersRead } from '../../src/pool/after-answers.js';

/** A thread that answers every message at once, then sets its flag: the answer is on its way. */
const ANSWERER = `
const { parentPort, workerData } = require('node:worker_threads');
const posted = new Int32Array(workerData);
parentPort.on('message', () => {
  parentPort.postMessage('answer');
  Atomics.store(posted, 0, 1);
});
`;

const FRESH_MS = 5;

/** Busy on purpose until `done`, then `ms` more (at most 5 s in all: a test never hangs here). */
function holdUntil(done: () => boolean, ms: number): void {
  const giveUp = performance.now() + 5000;
  while (!done() && performance.now() < giveUp) {
    // busy on purpose
  }
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

/**
 * Runs `turn` in the poll phase, as a client's frame is handled: in the data callback of a loopback
 * TCP connection.
 */
async function inPollPhase<T>(turn: (done: (value: T) => void) => void): Promise<T> {
  const server = net.createServer((socket) => socket.end('x'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    return await new Promise<T>((resolve) => {
      const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      client.once('data', () => {
        client.destroy();
        turn(resolve);
      });
    });
  } finally {
    server.close();
  }
}

describe('a watchdog check after a long turn', () => {
  const posted = new Int32Array(new SharedArrayBuffer(4));
  let worker: Worker;
  let answered = 0;
  before(async () => {
    worker = new Worker(ANSWERER, { eval: true, workerData: posted.buffer });
    worker.on('message', () => answered++);
    await once(worker, 'online');
  });
  after(() => worker.terminate());

  it('runs only after the answers posted during a long turn in the poll phase are read', async () => {
    const seen = await inPollPhase<{ plain: number; checked: number }>((done) => {
      const before = answered;
      Atomics.store(posted, 0, 0);
      worker.postMessage('answer now');
      let plain = -1;
      // What a check in a plain immediate, asked for before the long turn, would see.
      setImmediate(() => (plain = answered - before));
      afterAnswersRead(() => done({ plain, checked: answered - before }), FRESH_MS);
      // The long turn: the worker answers during it.
      holdUntil(() => Atomics.load(posted, 0) === 1, 4 * FRESH_MS);
    });
    assert.equal(seen.plain, 0, 'a plain immediate runs before the answer posted during the turn is read');
    assert.equal(seen.checked, 1, 'the check runs after it is read');
  });

  it('runs in the same turn when the loop was not held', async () => {
    const ran = await inPollPhase<boolean>((done) => {
      let timerRan = false;
      setTimeout(() => (timerRan = true), 0);
      afterAnswersRead(() => done(timerRan), 1000);
    });
    assert.equal(ran, false, 'the check ran before the next turn\'s timers');
  });
});
