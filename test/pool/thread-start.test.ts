import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { ClaimSlab } from '../../src/pool/claims.js';
import { FlagsSlab } from '../../src/pool/flags.js';
import { POOL_TASK_FILE } from '../../src/pool/worker-pool.js';

const distSrc = fileURLToPath(new URL('../../src/', import.meta.url));
/** The pool thread's own code, which the task file loads. */
const threadCode = fileURLToPath(new URL('../../src/pool/worker.js', import.meta.url));

describe('pool threads: ending one while it starts ends only that thread', () => {
  it("Piscina's require() of the pool's task file loads no ES module (Node 20 aborts the process when a thread is terminated inside one)", async () => {
    // Piscina require()s its task file before it tries import(). What that require() loads of
    // the service's own code, in a thread given what a pool thread is given: an ES module among it
    // would be loaded synchronously (require(esm)), the load a terminate must not hit.
    // Then, once that is noted, what the thread's code exports for Piscina to run by name.
    const probe = `
      const { parentPort } = require('node:worker_threads');
      const entry = require(${JSON.stringify(POOL_TASK_FILE)});
      const loaded = Object.keys(require.cache).filter((file) => file.startsWith(${JSON.stringify(distSrc)}));
      const named = (m) => Object.keys(m).filter((k) => k !== 'default' && typeof m[k] === 'function').sort();
      import(${JSON.stringify(pathToFileURL(threadCode).href)}).then((code) => {
        parentPort.postMessage({ entry: typeof entry, loaded, names: named(entry), threadNames: named(code) });
      });
    `;
    const workerData = { flagsSlab: new FlagsSlab(4).buffer, claimSlab: new ClaimSlab(8).buffer, batchAnswerUs: 0, stepTickMs: 5 };
    const worker = new Worker(probe, { eval: true, workerData });
    try {
      const [answer] = (await once(worker, 'message')) as [{ entry: string; loaded: string[]; names: string[]; threadNames: string[] }];
      assert.deepEqual(
        answer.loaded.filter((file) => path.extname(file) !== '.cjs'),
        [],
        'require() of the task file loaded an ES module of the service synchronously',
      );
      assert.equal(answer.entry, 'function', 'the task file exports the task function itself');
      assert.ok(answer.threadNames.length > 0);
      assert.deepEqual(answer.names, answer.threadNames, 'every task name the thread code exports (a loop consumer runs by its own) is in the task file');
    } finally {
      await worker.terminate();
    }
  });

  it('closing pools while their threads are still starting ends every thread and not the process', async () => {
    // Each round starts a pool whose two step threads begin loading at once, and closes it at a
    // different point of their start (0-29 ms in). The child exits by itself only once every
    // thread is gone; a thread ended inside a synchronous module load aborts it instead.
    const rounds = 30;
    const module = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));
    const script = `
      const { WorkerPool } = await import(${module('../../src/pool/worker-pool.js')});
      const { FlagsSlab } = await import(${module('../../src/pool/flags.js')});
      const { ClaimSlab } = await import(${module('../../src/pool/claims.js')});
      const options = { minThreads: 2, maxThreads: 2, idleTimeoutMs: 1000, loopMaxThreads: 1, loopIdleTimeoutMs: 1000, maxHeapMb: 0, exitWaitMs: 1000 };
      for (let round = 0; round < ${rounds}; round++) {
        const pool = new WorkerPool(options, { flagsSlab: new FlagsSlab(4).buffer, claimSlab: new ClaimSlab(8).buffer, batchAnswerUs: 0, stepTickMs: 5 }, () => {});
        await new Promise((resolve) => setTimeout(resolve, round));
        await pool.close();
      }
      console.log('closed ' + ${rounds});
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    clearTimeout(timer);
    assert.deepEqual({ code, signal, out: out.trim() }, { code: 0, signal: null, out: `closed ${rounds}` }, `the child's stderr:\n${err}`);
  });
});
