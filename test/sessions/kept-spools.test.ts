import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { KeptSpools, type KeptSpoolsOptions } from '../../src/sessions/kept-spools.js';
import { KEEP_MARKER } from '../../src/sessions/spool.js';

const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
const HOUR_MS = 3600_000;

/** The policy alone, on real folders: age, quota (oldest first), live spools spared. */
describe('kept spools policy', () => {
  let dataDir: string;
  let kept: KeptSpools | null = null;
  /** Running sessions that keep their spool, and running ones that do not. */
  const live = new Set<string>();
  const running = new Set<string>();

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-kept-'));
    live.clear();
    running.clear();
  });
  afterEach(async () => {
    await kept?.close();
    kept = null;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** A kept spool folder with one data file of `sizeBytes`, kept `ageMs` ago. */
  function spool(id: string, sizeBytes: number, ageMs: number, marker = true): string {
    const dir = path.join(dataDir, 'spool', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '000000000001.chunk'), Buffer.alloc(sizeBytes));
    if (marker) {
      fs.writeFileSync(path.join(dir, KEEP_MARKER), '');
      const at = new Date(Date.now() - ageMs);
      fs.utimesSync(path.join(dir, KEEP_MARKER), at, at);
    }
    return dir;
  }

  function open(opts: Partial<KeptSpoolsOptions> = {}): KeptSpools {
    kept = new KeptSpools({
      dataDir,
      maxBytes: 1 << 30,
      maxAgeMs: 24 * HOUR_MS,
      sweepIntervalMs: 60_000,
      live: (id) => (live.has(id) ? { keep: true } : running.has(id) ? { keep: false } : null),
      logger: createLogger('silent'),
      ...opts,
    });
    return kept;
  }

  it('lists kept spools oldest first with their size and files, and ignores folders without the marker', async () => {
    spool(ids[0]!, 100, 2 * HOUR_MS);
    spool(ids[1]!, 300, 1 * HOUR_MS);
    spool(ids[2]!, 50, 0, false);
    live.add(ids[1]!);
    const list = await open().list();
    assert.deepEqual(list.map((s) => [s.id, s.sizeBytes, s.files, s.live]), [
      [ids[0], 100, 1, false],
      [ids[1], 300, 1, true],
    ]);
  });

  it('removes expired spools and, over the quota, the oldest first until the rest fits', async () => {
    spool(ids[0]!, 1000, 3 * HOUR_MS);
    spool(ids[1]!, 1000, 2 * HOUR_MS);
    spool(ids[2]!, 1000, 1 * HOUR_MS);
    assert.deepEqual(await open({ maxBytes: 2500 }).sweep(), [ids[0]], 'one removal brings 3000 bytes under 2500');
    assert.ok(!fs.existsSync(path.join(dataDir, 'spool', ids[0]!)));
    await kept!.close();
    assert.deepEqual(await open({ maxAgeMs: 90 * 60_000 }).sweep(), [ids[1]], 'older than 90 minutes');
    assert.deepEqual((await kept!.list()).map((s) => s.id), [ids[2]]);
  });

  it('never expires, counts or removes the spool of a running session', async () => {
    spool(ids[0]!, 5000, 3 * HOUR_MS);
    spool(ids[1]!, 1000, 2 * HOUR_MS);
    live.add(ids[0]!);
    const k = open({ maxBytes: 500, maxAgeMs: HOUR_MS });
    assert.deepEqual(await k.sweep(), [ids[1]]);
    assert.ok(fs.existsSync(path.join(dataDir, 'spool', ids[0]!)));
    await assert.rejects(k.remove(ids[0]!), { code: 'SPOOL_LIVE' });
    live.delete(ids[0]!);
    assert.equal((await k.remove(ids[0]!)).sizeBytes, 5000);
    await assert.rejects(k.remove(ids[0]!), { code: 'SPOOL_NOT_FOUND' });
    await assert.rejects(k.remove('../../etc'), { code: 'VALIDATION' });
  });

  it("reads no folder of a running session that does not keep its spool, and a sweep no running session's at all", async () => {
    spool(ids[0]!, 100, 2 * HOUR_MS); // kept; its session ended
    spool(ids[1]!, 300, 1 * HOUR_MS); // kept by a session still running
    live.add(ids[1]!);
    const others = Array.from({ length: 50 }, (_, i) => `44444444-4444-4444-8444-${String(i).padStart(12, '0')}`);
    for (const id of others) {
      spool(id, 10, 0, false);
      running.add(id);
    }
    const stat = fs.promises.stat;
    const read: string[] = [];
    fs.promises.stat = ((p: fs.PathLike, ...rest: []) => (read.push(String(p)), stat(p, ...rest))) as typeof stat;
    const readOf = (id: string) => read.some((p) => p.includes(id));
    try {
      const k = open({ maxAgeMs: 90 * 60_000 });
      assert.deepEqual((await k.list()).map((s) => [s.id, s.live]), [
        [ids[0], false],
        [ids[1], true],
      ]);
      assert.ok(!others.some(readOf), 'the listing read no folder of a running session that does not keep its spool');
      read.length = 0;
      assert.deepEqual(await k.sweep(), [ids[0]], 'the ended spool older than 90 minutes');
      assert.ok(readOf(ids[0]!), "the sweep read the ended session's spool");
      assert.ok(!readOf(ids[1]!) && !others.some(readOf), "the sweep read no running session's folder");
    } finally {
      fs.promises.stat = stat;
    }
  });

  it('starts with a sweep and keeps sweeping on its interval', async () => {
    spool(ids[0]!, 10, 2 * HOUR_MS);
    const k = open({ maxAgeMs: HOUR_MS, sweepIntervalMs: 50 });
    await k.start();
    assert.deepEqual(await k.list(), [], 'the start-up sweep removed the expired spool');
    spool(ids[1]!, 10, 2 * HOUR_MS);
    const deadline = Date.now() + 15_000;
    while ((await k.list()).length > 0) {
      assert.ok(Date.now() < deadline, 'the timer removed the second expired spool');
      await new Promise((r) => setTimeout(r, 25));
    }
  });
});
