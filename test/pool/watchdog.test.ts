/**
 * When the step threads' watchdogs judge (pool/watchdog.ts): as of a moment whose answers have all
 * been read, even when a long turn of the main thread was a callback of the poll phase, and one
 * turn later however long the turns are.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { afterAnswersRead, Watchdog } from '../../src/pool/watchdog.js';
import { nowMs } from '../../src/pool/flags.js';
import { holdMainThread, inPollPhase } from '../helpers/event-loop.js';

/** A thread that answers every message at once, then sets its flag: the answer is on its way. */
const ANSWERER = `
const { parentPort, workerData } = require('node:worker_threads');
const posted = new Int32Array(workerData);
parentPort.on('message', () => {
  parentPort.postMessage('answer');
  Atomics.store(posted, 0, 1);
});
`;

describe('a watchdog judges after the answers on their way are read', () => {
  const posted = new Int32Array(new SharedArrayBuffer(4));
  let worker: Worker;
  let answered = 0;
  before(async () => {
    worker = new Worker(ANSWERER, { eval: true, workerData: posted.buffer });
    worker.on('message', () => answered++);
    await once(worker, 'online');
  });
  after(() => worker.terminate());

  it('reads an answer posted during a long poll-phase turn before the check, which a plain immediate does not', async () => {
    const seen = await inPollPhase<{ plain: number; checked: number; postedBeforeAsOf: boolean }>((done) => {
      const before = answered;
      Atomics.store(posted, 0, 0);
      worker.postMessage('answer now');
      let plain = -1;
      setImmediate(() => (plain = answered - before));
      let postedAt = 0;
      afterAnswersRead((asOf) => done({ plain, checked: answered - before, postedBeforeAsOf: postedAt > 0 && postedAt <= asOf }));
      // The long turn: the worker answers during it (at most 5 s, so a stuck worker fails, not hangs).
      const giveUp = performance.now() + 5000;
      while (Atomics.load(posted, 0) !== 1 && performance.now() < giveUp) {
        // busy on purpose
      }
      postedAt = nowMs();
      holdMainThread(20);
    });
    // The premise: the answer waits past this turn's immediates (what made the old check wrong).
    assert.equal(seen.plain, 0, 'a plain immediate ran before the answer was read');
    assert.equal(seen.postedBeforeAsOf, true, 'the answer was posted before the moment judged');
    assert.equal(seen.checked, 1, 'the check ran after the answer was read');
  });

  it('runs one turn later, however long that turn is', async () => {
    const turnsSeen = await inPollPhase<number>((done, next) => {
      let turns = 0;
      const count = () => {
        turns++;
        if (turns < 5) setImmediate(count);
      };
      setImmediate(count);
      afterAnswersRead(() => done(turns));
      holdMainThread(20);
      // The next turn is long too, in its poll phase: the check still runs in its immediates.
      next(() => holdMainThread(50));
    });
    assert.equal(turnsSeen, 2, 'the check ran in the second turn of immediates');
  });
});

describe('a watchdog timer', () => {
  it('checks while armed, never once disarmed or closed', async () => {
    const checks: number[] = [];
    let firstCheck!: () => void;
    const checked = new Promise<void>((resolve) => (firstCheck = resolve));
    const dog = new Watchdog(1, (asOf) => {
      checks.push(asOf);
      dog.disarm();
      firstCheck();
    });
    dog.arm();
    await checked;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(checks.length, 1, 'no check after disarm');
    dog.close();
    dog.arm();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(checks.length, 1, 'no check once closed');
  });
});
