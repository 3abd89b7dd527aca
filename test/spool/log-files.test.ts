import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FlagsSlab } from '../../src/pool/flags.js';
import { HeldFilesBudget } from '../../src/spool/held-files.js';
import { heldFd, LogFiles } from '../../src/spool/log-files.js';
import { segmentPath } from '../../src/spool/log.js';
import { openFilesIn } from '../helpers/proc.js';

/** Steps that are never on their way. */
const IDLE = { idle: () => true, pause: () => {} };

describe('LogFiles', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-log-files-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));
  const slab = new FlagsSlab(8);
  const newBudget = () => new HeldFilesBudget({ max: 100, openFilesLimit: 1000, reserve: 0, askPatienceMs: 1000 }, () => 0);

  it('holds both step logs open, and closes them and gives them back to the budget on close', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], IDLE);
    await files.open();
    assert.equal(budget.held, 2);
    assert.notEqual(heldFd(flags, 'chunks', 1), null);
    assert.equal(openFilesIn(dir).length, 2);
    files.close();
    assert.equal(budget.held, 0);
    assert.equal(heldFd(flags, 'chunks', 1), null);
    assert.deepEqual(openFilesIn(dir), []);
  });

  it('holds nothing when it was closed before it opened (a session stopped while its spool was being created)', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], IDLE);
    // Session.stop closes the files once both sides are idle, which can come before createSpool resolves and open() runs.
    files.close();
    await files.open();
    assert.equal(budget.held, 0, 'nothing taken from the budget');
    assert.equal(heldFd(flags, 'chunks', 1), null);
    assert.equal(heldFd(flags, 'results', 1), null);
    assert.deepEqual(openFilesIn(dir), [], 'no descriptor left open');
  });

  it('retired before it opened (a stop during start whose files close with its removal), it takes nothing and wants nothing', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], IDLE);
    files.retire();
    await files.open();
    assert.equal(budget.held, 0, 'nothing taken from the budget');
    assert.equal(budget.wanting, 0, 'not waiting for room either');
    assert.equal(files.retake(), 0, 'room offered later is not taken');
    assert.deepEqual(openFilesIn(dir), []);
    files.close();
    assert.equal(budget.held, 0);
  });

  it('retired after it opened, it keeps its descriptors until close, gives them up to a socket that needs the room, and never takes any again', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], IDLE);
    await files.open();
    files.retire();
    assert.equal(budget.held, 2, 'still counted while open');
    assert.equal(openFilesIn(dir).length, 2);
    assert.equal(files.giveBack(), 2, 'a socket that needs the room gets it');
    assert.equal(budget.held, 0);
    assert.equal(budget.wanting, 0, 'an ended session does not wait for room');
    assert.equal(files.retake(), 0);
    assert.deepEqual(openFilesIn(dir), []);
    files.close();
    assert.equal(budget.held, 0, 'closing after giving back counts nothing twice');

    const dir2 = fs.mkdtempSync(path.join(root, 's-'));
    const other = new LogFiles(dir2, slab.alloc()!.flags, budget, ['chunks', 'results'], IDLE);
    await other.open();
    other.retire();
    other.close();
    assert.equal(budget.held, 0);
    assert.deepEqual(openFilesIn(dir2), [], 'closed on close');
  });

  it('gives its descriptors back only while none of its steps is on its way', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    let stepUnderWay = true;
    let pauses = 0;
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], { idle: () => !stepUnderWay, pause: () => pauses++ });
    await files.open();
    assert.equal(budget.held, 2);
    // A step's thread may be writing through the held descriptors: they stay open.
    assert.equal(files.giveBack(), 0);
    assert.equal(pauses, 0, 'giving back asks nothing of the steps by itself');
    assert.equal(openFilesIn(dir).length, 2);
    assert.notEqual(heldFd(flags, 'results', 1), null);
    // Asked back, the steps are told to pause; the descriptors stay open until they do.
    assert.equal(files.askBack(), 2);
    assert.equal(pauses, 1);
    assert.equal(openFilesIn(dir).length, 2);
    stepUnderWay = false;
    assert.equal(files.giveBack(), 2);
    assert.equal(budget.held, 0);
    assert.equal(heldFd(flags, 'results', 1), null, 'steps open their files themselves from now on');
    assert.deepEqual(openFilesIn(dir), []);
    assert.equal(files.askBack(), 0, 'holding nothing, it is asked nothing');
    assert.equal(pauses, 1);
    files.close();
    assert.equal(budget.held, 0, 'closing after giving back gives nothing twice');
  });

  it('takes room back only when it can open every log: a step never sees a descriptor that is closed again', async () => {
    const dir = fs.mkdtempSync(path.join(root, 's-'));
    const { flags } = slab.alloc()!;
    const budget = newBudget();
    const files = new LogFiles(dir, flags, budget, ['chunks', 'results'], IDLE);
    await files.open();
    assert.equal(files.giveBack(), 2);
    // The results segment cannot be opened for appending any more.
    fs.rmSync(segmentPath(dir, 'results', 1));
    fs.mkdirSync(segmentPath(dir, 'results', 1));
    // What a step thread would find for the chunks log while the results segment is being opened.
    const seenByAStep: Array<number | null> = [];
    const openSync = fs.openSync;
    fs.openSync = ((...args: Parameters<typeof fs.openSync>) => {
      if (String(args[0]) === segmentPath(dir, 'results', 1)) seenByAStep.push(heldFd(flags, 'chunks', 1));
      return openSync(...args);
    }) as typeof fs.openSync;
    try {
      assert.equal(files.retake(), 0, 'nothing taken');
    } finally {
      fs.openSync = openSync;
    }
    assert.deepEqual(seenByAStep, [null], 'the chunks descriptor was not published before the results one opened');
    assert.equal(heldFd(flags, 'chunks', 1), null);
    assert.equal(budget.held, 0, 'the room went back to the budget');
    assert.deepEqual(openFilesIn(dir), [], 'no descriptor left open');
    // Once it can open both, it holds both.
    fs.rmdirSync(segmentPath(dir, 'results', 1));
    fs.writeFileSync(segmentPath(dir, 'results', 1), '');
    assert.equal(files.retake(), 2);
    assert.notEqual(heldFd(flags, 'chunks', 1), null);
    assert.notEqual(heldFd(flags, 'results', 1), null);
    files.close();
    assert.deepEqual(openFilesIn(dir), []);
  });
});
