import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ClaimSlab } from '../../src/pool/claims.js';
import { FlagsSlab } from '../../src/pool/flags.js';
import { WorkerPool } from '../../src/pool/worker-pool.js';
import { SpoolRemover } from '../../src/sessions/spool-remover.js';

const LIMITS = { maxEntries: 64, spreadMin: 8 };
/** Removals go out at once, never waiting for a storm to pass; one no thread begins within a second is done here. */
const AT_ONCE = { stormSessions: Infinity, quietMs: 0, maxMs: 0, threadWaitMs: 1000 };

function newPool(): WorkerPool {
  const flags = new FlagsSlab(4);
  const claims = new ClaimSlab(8);
  return new WorkerPool(
    { minThreads: 1, maxThreads: 2, loopMaxThreads: 1, idleTimeoutMs: 30_000, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 },
    { flagsSlab: flags.buffer, claimSlab: claims.buffer, batchAnswerUs: 0, stepTickMs: 5 },
    () => {},
  );
}

/** A spool-like folder: two segment files with bytes in them. */
function makeSpool(root: string, name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'chunks-000000000001.log'), Buffer.alloc(300, 1));
  fs.writeFileSync(path.join(dir, 'results-000000000001.log'), Buffer.alloc(200, 2));
  return dir;
}

describe('spool folders of ended sessions are removed in batches on a pool thread', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-remover-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('removes every folder asked for in one turn with a few pool tasks, not one per folder', async () => {
    const pool = newPool();
    try {
      const remover = new SpoolRemover(pool, LIMITS, AT_ONCE);
      const dirs = Array.from({ length: 100 }, (_, i) => makeSpool(root, `a${i}`));
      const before = pool.stats().completed;
      await Promise.all(dirs.map((d) => remover.remove(d)));
      for (const d of dirs) assert.equal(fs.existsSync(d), false, `${d} is gone`);
      const tasks = pool.stats().completed - before;
      // 100 folders: split over the two threads, 64 at most a task.
      assert.ok(tasks >= 1 && tasks <= 2, `100 folders took ${tasks} pool tasks`);
    } finally {
      await pool.close();
    }
  });

  it('a folder that cannot be removed fails alone, saying why; the others of its task are removed', async () => {
    const pool = newPool();
    try {
      const remover = new SpoolRemover(pool, LIMITS, AT_ONCE);
      const good = [makeSpool(root, 'b1'), makeSpool(root, 'b2')];
      const bad = path.join(root, 'b\u0000bad');
      const outcomes = await Promise.allSettled([remover.remove(good[0]!), remover.remove(bad), remover.remove(good[1]!)]);
      assert.equal(outcomes[0]!.status, 'fulfilled');
      assert.equal(outcomes[2]!.status, 'fulfilled');
      assert.equal(outcomes[1]!.status, 'rejected');
      assert.match(String((outcomes[1] as PromiseRejectedResult).reason.message), /null bytes|NUL|\\0/i);
      for (const d of good) assert.equal(fs.existsSync(d), false);
    } finally {
      await pool.close();
    }
  });

  it('removes the folders on the main thread when the pool can no longer run a task', async () => {
    const pool = newPool();
    await pool.close();
    const remover = new SpoolRemover(pool, LIMITS, AT_ONCE);
    const dirs = [makeSpool(root, 'c1'), makeSpool(root, 'c2')];
    await Promise.all(dirs.map((d) => remover.remove(d)));
    for (const d of dirs) assert.equal(fs.existsSync(d), false);
  });

  it('a few sessions ending together are removed at once; only a storm waits', { timeout: 20_000 }, async () => {
    const pool = newPool();
    try {
      // The quiet spell is a minute: a removal that waited would time the test out.
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 3, quietMs: 60_000, maxMs: 60_000, threadWaitMs: 60_000 });
      const dirs = Array.from({ length: 4 }, (_, i) => makeSpool(root, `g${i}`));
      await remover.remove(dirs[0]!);
      await Promise.all([remover.remove(dirs[1]!), remover.remove(dirs[2]!)]);
      for (const d of dirs.slice(0, 3)) assert.equal(fs.existsSync(d), false, `${d} is gone`);
      // The fourth with no quiet spell since the first is a storm's: it waits (here, for the close).
      const fourth = remover.remove(dirs[3]!);
      await nextTurn();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(fs.existsSync(dirs[3]!), true, 'the fourth removal waits');
      remover.hurry();
      await fourth;
      assert.equal(fs.existsSync(dirs[3]!), false);
    } finally {
      await pool.close();
    }
  });

  it('a steady churn below the storm rate never waits, however long it lasts', { timeout: 60_000 }, async () => {
    const pool = newPool();
    try {
      // 4 removals within 2 s is a storm; one every 800 ms (at most 3 in any 2 s) is not, though
      // no gap between them is a quiet spell. A removal that waited would go 2 s after its ask.
      const quietMs = 2000;
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 3, quietMs, maxMs: 60_000, threadWaitMs: 60_000 });
      const dirs = Array.from({ length: 7 }, (_, i) => makeSpool(root, `h${i}`));
      for (const [i, d] of dirs.entries()) {
        const askedAt = performance.now();
        await remover.remove(d);
        const took = performance.now() - askedAt;
        assert.equal(fs.existsSync(d), false, `${d} is gone`);
        assert.ok(took < quietMs * 0.9, `removal ${i + 1} of a churn of one per 800 ms took ${Math.round(took)} ms: it waited for a quiet spell`);
        // Never sooner than 800 ms after the one before, so the churn stays below the storm's rate.
        await new Promise((r) => setTimeout(r, Math.max(0, 800 - (performance.now() - askedAt))));
      }
    } finally {
      await pool.close();
    }
  });

  it('removals that keep coming wait until none came for the quiet spell, then go out together', async () => {
    const pool = newPool();
    try {
      const quietMs = 400;
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 1, quietMs, maxMs: 60_000, threadWaitMs: 60_000 });
      const first = makeSpool(root, 'd0');
      const storm = Array.from({ length: 20 }, (_, i) => makeSpool(root, `d${i + 1}`));
      const before = pool.stats().completed;
      const firstGone = remover.remove(first).then(() => performance.now());
      await nextTurn();
      const askedAt = performance.now();
      const stormGone = Promise.all(storm.map((d) => remover.remove(d))).then(() => performance.now());
      const [firstAt, stormAt] = await Promise.all([firstGone, stormGone]);
      for (const d of [first, ...storm]) assert.equal(fs.existsSync(d), false, `${d} is gone`);
      // The first came after a quiet spell and went at once; the others, asked within the spell, waited it out.
      assert.ok(firstAt < stormAt, 'the removal after a quiet spell went first');
      assert.ok(stormAt - askedAt >= quietMs, `the storm's folders went ${Math.round(stormAt - askedAt)} ms after they were asked for, before the quiet spell (${quietMs} ms) ended`);
      const tasks = pool.stats().completed - before;
      // One task for the first; the 20 that waited, split over the two threads.
      assert.ok(tasks >= 2 && tasks <= 3, `1 + 20 waiting folders took ${tasks} pool tasks`);
    } finally {
      await pool.close();
    }
  });

  it('a removal never waits longer than SPOOL_REMOVAL_MAX_DELAY_MS, however long removals keep coming', async () => {
    const pool = newPool();
    try {
      const maxMs = 300;
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 1, quietMs: 60_000, maxMs, threadWaitMs: 60_000 });
      const dirs = Array.from({ length: 3 }, (_, i) => makeSpool(root, `e${i}`));
      await remover.remove(dirs[0]!);
      const askedAt = performance.now();
      await remover.remove(dirs[1]!);
      const waited = performance.now() - askedAt;
      assert.equal(fs.existsSync(dirs[1]!), false);
      assert.ok(waited >= maxMs && waited < 30_000, `a waiting removal went ${Math.round(waited)} ms after it was asked for (longest wait ${maxMs} ms, quiet spell 60 s)`);
      // The one that went out began a new wait: the next is held again, then sent by the close.
      const third = remover.remove(dirs[2]!);
      remover.hurry();
      await third;
      assert.equal(fs.existsSync(dirs[2]!), false);
    } finally {
      await pool.close();
    }
  });

  it("runs each removal's release when the removal goes out: at once after a quiet spell, after the storm in one", { timeout: 20_000 }, async () => {
    const pool = newPool();
    try {
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 1, quietMs: 60_000, maxMs: 60_000, threadWaitMs: 60_000 });
      const dirs = [makeSpool(root, 'i0'), makeSpool(root, 'i1')];
      const released: string[] = [];
      await remover.remove(dirs[0]!, () => released.push('i0'));
      assert.deepEqual(released, ['i0']);
      const waiting = remover.remove(dirs[1]!, () => released.push('i1'));
      await nextTurn();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(released, ['i0'], 'a waiting removal has not released yet');
      remover.hurry();
      assert.deepEqual(released, ['i0', 'i1'], 'released as its removal goes out');
      await waiting;
      // A release that throws does not keep its folder, or the others, from going.
      const d2 = makeSpool(root, 'i2');
      await remover.remove(d2, () => {
        throw new Error('release failed');
      });
      assert.equal(fs.existsSync(d2), false);
    } finally {
      await pool.close();
    }
  });

  it('a closing service sends the waiting removals at once and no longer holds any back', { timeout: 20_000 }, async () => {
    const pool = newPool();
    try {
      const remover = new SpoolRemover(pool, LIMITS, { stormSessions: 1, quietMs: 60_000, maxMs: 60_000, threadWaitMs: 60_000 });
      const dirs = Array.from({ length: 3 }, (_, i) => makeSpool(root, `f${i}`));
      await remover.remove(dirs[0]!);
      const waiting = remover.remove(dirs[1]!);
      await nextTurn();
      assert.equal(fs.existsSync(dirs[1]!), true, 'a removal asked for right after another waits');
      remover.hurry();
      await waiting;
      await remover.remove(dirs[2]!);
      for (const d of dirs) assert.equal(fs.existsSync(d), false, `${d} is gone`);
    } finally {
      await pool.close();
    }
  });
});
