import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeldFilesBudget, processOpenFilesLimit, type FileHolder } from '../../src/spool/held-files.js';

/** A session's held files as the budget sees them: it gives them back only while `idle`. */
class Holder implements FileHolder {
  held = 0;
  idle = true;
  /** Times it was asked to pause its steps. */
  asked = 0;
  constructor(readonly budget: HeldFilesBudget) {}
  hold(n: number): boolean {
    if (!this.budget.take(n, this)) return false;
    this.held = n;
    return true;
  }
  giveBack(): number {
    if (!this.idle || this.held === 0) return 0;
    const n = this.held;
    this.held = 0;
    this.budget.give(n, this);
    this.budget.want(this);
    return n;
  }
  askBack(): number {
    if (this.held === 0) return 0;
    this.asked++;
    return this.held;
  }
  retake(): number {
    return this.held === 0 && this.hold(2) ? 2 : 0;
  }
}

describe('HeldFilesBudget', () => {
  it('grants files only while held + sockets + reserve fit under the limit, and never past the cap', () => {
    let sockets = 0;
    const budget = new HeldFilesBudget({ max: 6, openFilesLimit: 20, reserve: 4, askPatienceMs: 1000 }, () => sockets);
    sockets = 10;
    const a = new Holder(budget);
    const b = new Holder(budget);
    const c = new Holder(budget);
    assert.equal(a.hold(2), true);
    assert.equal(b.hold(2), true); // 4 + 10 + 4 = 18
    assert.equal(c.hold(2), true); // 6 + 10 + 4 = 20
    assert.equal(new Holder(budget).hold(2), false, 'past the limit');
    sockets = 0;
    assert.equal(new Holder(budget).hold(2), false, 'past SPOOL_HELD_FILES_MAX');
    assert.equal(budget.held, 6);
  });

  it('takes files back from idle holders when sockets grow, and waits for busy ones', async () => {
    let sockets = 0;
    const budget = new HeldFilesBudget({ max: 100, openFilesLimit: 12, reserve: 0, askPatienceMs: 1000 }, () => sockets);
    const holders = [0, 1, 2, 3].map(() => new Holder(budget));
    for (const h of holders) assert.equal(h.hold(2), true);
    sockets = 4; // 8 + 4 = 12: fits
    budget.makeRoom();
    assert.equal(budget.held, 8);
    sockets = 7; // 8 + 7 = 15: 3 over; the busy first holder is asked to pause (2 to come), the next idle one gives back
    holders[0]!.idle = false;
    budget.makeRoom();
    assert.equal(budget.held, 6);
    assert.deepEqual(holders.map((h) => h.held), [2, 0, 2, 2], 'the busy one kept its files for now; an idle one gave its');
    assert.equal(holders[0]!.asked, 1);
    sockets = 10; // 6 + 10 = 16: 4 over; the asked one still counts as coming, idle ones give the rest
    budget.makeRoom();
    assert.deepEqual(holders.map((h) => h.held), [2, 0, 0, 2]);
    sockets = 11; // 4 + 11 = 15: 3 over
    budget.makeRoom();
    assert.deepEqual(holders.map((h) => h.held), [2, 0, 0, 0], 'only the busy holder holds files, until it pauses');
    holders[0]!.idle = true;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(budget.held, 0, 'retried once the holder was idle');
    assert.equal(budget.givenBack, 8);
    budget.close();
  });

  it('asks only as many busy holders to pause as cover what is over', async () => {
    let sockets = 0;
    const budget = new HeldFilesBudget({ max: 100, openFilesLimit: 20, reserve: 0, askPatienceMs: 1000 }, () => sockets);
    const holders = [0, 1, 2, 3, 4].map(() => new Holder(budget));
    for (const h of holders) {
      assert.equal(h.hold(2), true);
      h.idle = false; // resident sessions: always on their way until asked
    }
    sockets = 13; // 10 + 13 = 23: 3 over, two holders' four cover it
    budget.makeRoom();
    assert.equal(budget.held, 10, 'none was idle: nothing closed yet');
    assert.deepEqual(holders.map((h) => h.asked), [1, 1, 0, 0, 0], 'only the first two were asked to pause');
    for (const h of holders) if (h.asked > 0) h.idle = true; // they paused
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(holders.map((h) => h.held), [0, 0, 2, 2, 2], 'the two that paused gave theirs back');
    assert.equal(budget.givenBack, 4);
    budget.close();
  });

  it('asks others in the place of a holder that does not pause within SPOOL_HELD_FILES_ASK_MS', async () => {
    let sockets = 0;
    const budget = new HeldFilesBudget({ max: 100, openFilesLimit: 10, reserve: 0, askPatienceMs: 20 }, () => sockets);
    const holders = [0, 1, 2].map(() => new Holder(budget));
    for (const h of holders) {
      assert.equal(h.hold(2), true);
      h.idle = false;
    }
    sockets = 5; // 6 + 5 = 11: 1 over
    budget.makeRoom();
    assert.deepEqual(holders.map((h) => h.asked), [1, 0, 0], 'the first is asked; its two cover what is over');
    holders[1]!.idle = true; // the first hangs; the second would pause when asked
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(holders.map((h) => h.held), [2, 0, 2], 'past the patience, the next holder was asked and gave back');
    assert.equal(holders[2]!.asked, 0, 'and no more than that');
    budget.close();
  });

  it('offers the room back to holders that gave theirs, as many as fit, once sockets close', () => {
    let sockets = 0;
    const budget = new HeldFilesBudget({ max: 100, openFilesLimit: 12, reserve: 0, askPatienceMs: 1000 }, () => sockets);
    const holders = [0, 1, 2, 3].map(() => new Holder(budget));
    for (const h of holders) assert.equal(h.hold(2), true);
    sockets = 8; // 8 + 8 = 16: two holders give back
    budget.makeRoom();
    assert.deepEqual(holders.map((h) => h.held), [0, 0, 2, 2]);
    assert.equal(budget.wanting, 2);
    budget.offerRoom();
    assert.equal(budget.held, 4, 'nothing fits yet: none taken back');
    sockets = 6; // 4 + 6 = 10: room for one holder's two, not for both
    budget.offerRoom();
    assert.deepEqual(holders.map((h) => h.held), [2, 0, 2, 2]);
    assert.equal(budget.wanting, 1);
    sockets = 2;
    budget.offerRoom();
    assert.deepEqual(holders.map((h) => h.held), [2, 2, 2, 2]);
    assert.equal(budget.wanting, 0);
    // A holder that ended is never offered the room again.
    sockets = 8;
    budget.makeRoom();
    const gave = holders.filter((h) => h.held === 0);
    assert.equal(gave.length, 2);
    budget.leave(gave[0]!);
    sockets = 0;
    budget.offerRoom();
    assert.equal(gave[0]!.held, 0, 'a holder that left takes nothing');
    assert.equal(gave[1]!.held, 2);
    budget.close();
  });

  it('reads the process open-file limit', () => {
    const limit = processOpenFilesLimit();
    assert.ok(limit === null || limit > 0);
    if (process.platform === 'linux') assert.ok(limit !== null && limit >= 256, `a Linux soft limit: ${limit}`);
  });
});
