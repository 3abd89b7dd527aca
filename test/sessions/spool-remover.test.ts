import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClaimSlab } from '../../src/pool/claims.js';
import { FlagsSlab } from '../../src/pool/flags.js';
import { WorkerPool } from '../../src/pool/worker-pool.js';
import { SpoolRemover } from '../../src/sessions/spool-remover.js';

const LIMITS = { maxEntries: 64, spreadMin: 8 };

function newPool(): WorkerPool {
  const flags = new FlagsSlab(4);
  const claims = new ClaimSlab(8);
  return new WorkerPool(
    { minThreads: 1, maxThreads: 2, loopMaxThreads: 1, idleTimeoutMs: 30_000, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 },
    { flagsSlab: flags.buffer, claimSlab: claims.buffer },
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
      const remover = new SpoolRemover(pool, LIMITS);
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
      const remover = new SpoolRemover(pool, LIMITS);
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
    const remover = new SpoolRemover(pool, LIMITS);
    const dirs = [makeSpool(root, 'c1'), makeSpool(root, 'c2')];
    await Promise.all(dirs.map((d) => remover.remove(d)));
    for (const d of dirs) assert.equal(fs.existsSync(d), false);
  });
});
