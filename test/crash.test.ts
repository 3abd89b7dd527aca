import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { chunkProblem } from './fixtures/pipelines/big-chunks.js';
import { assertInOrder, TestClient } from './helpers/client.js';
import { eventually, FIXTURE_PIPELINES } from './helpers/server.js';

const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Service {
  child: ChildProcess;
  port: number;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Starts `node dist/src/main.js` on loopback with `dataDir`; resolves once it listens. */
async function startService(dataDir: string): Promise<Service> {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, PIPELINES_DIR: FIXTURE_PIPELINES, LOG_LEVEL: 'info', KEPT_SPOOLS_ALLOWED: 'true' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: Array<Record<string, unknown>> = [];
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      const m = /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(entry.address ?? ''));
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`service exited early with ${code}`)));
  });
  return { child, port, logs, exited };
}

/** Names of the files in a spool folder, by extension. */
function spoolFiles(dir: string): { chunks: string[]; tmps: string[]; other: string[] } {
  const names = fs.readdirSync(dir);
  return {
    chunks: names.filter((n) => n.endsWith('.chunk')),
    tmps: names.filter((n) => n.endsWith('.tmp')),
    other: names.filter((n) => !n.endsWith('.chunk') && !n.endsWith('.tmp')),
  };
}

describe('crashes and restarts', () => {
  it('after kill -9 every visible chunk is whole; the restart removes the crashed spools and leaves kept ones', async (t) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-crash-'));
    const spoolRoot = path.join(dataDir, 'spool');
    let service: Service | undefined;
    const clients: TestClient[] = [];
    try {
      service = await startService(dataDir);
      const url = `ws://127.0.0.1:${service.port}/ws`;
      // Three sessions writing 1 MiB chunks faster than they are consumed; the last one asks to keep its spool.
      for (const keep of [false, false, true]) {
        const client = await TestClient.open(url);
        clients.push(client);
        await client.start({ pipeline: 'big-chunks', keep, options: { count: 40 } });
      }
      const kept = clients[2]!.messages.find((m) => m.type === 'started')!.session!;
      await Promise.all(clients.map((c) => c.waitForTranscripts(2, 60_000)));
      // Chunks pile up on disk: kill while they do.
      await eventually(
        () => fs.readdirSync(spoolRoot).reduce((n, id) => n + spoolFiles(path.join(spoolRoot, id)).chunks.length, 0) >= 6,
        'complete chunks waiting in the spools',
        60_000,
      );
      service.child.kill('SIGKILL');
      await service.exited;
      for (const c of clients) {
        await c.waitClose();
        assertInOrder(c.transcripts());
        assert.deepEqual(c.invalid, []);
      }

      // Every *.chunk is complete and checks out; only *.tmp files may be torn.
      const crashed = fs.readdirSync(spoolRoot).sort();
      assert.equal(crashed.length, 3, 'the crash left three spools');
      let checked = 0;
      let torn = 0;
      for (const id of crashed) {
        const dir = path.join(spoolRoot, id);
        const files = spoolFiles(dir);
        assert.deepEqual(files.other, id === kept ? ['.keep'] : [], `only chunks in ${id}`);
        for (const name of files.chunks) {
          const problem = chunkProblem(fs.readFileSync(path.join(dir, name)));
          assert.equal(problem, null, `${id}/${name}: ${problem}`);
          checked++;
        }
        for (const name of files.tmps) if (chunkProblem(fs.readFileSync(path.join(dir, name))) !== null) torn++;
      }
      t.diagnostic(`after kill -9: ${checked} visible chunks all whole; ${torn} torn *.tmp file(s) (never visible)`);
      assert.ok(checked >= 6);

      // Restart on the same DATA_DIR: crashed spools go, the kept one stays, sessions work again.
      service = await startService(dataDir);
      const recovery = service.logs.find((l) => l.msg === 'removed spools left by an earlier crash');
      assert.equal(recovery?.count, 2, 'the start-up log says how many spools it removed');
      assert.deepEqual(fs.readdirSync(spoolRoot), [kept]);
      for (const name of spoolFiles(path.join(spoolRoot, kept)).chunks) {
        assert.equal(chunkProblem(fs.readFileSync(path.join(spoolRoot, kept, name))), null);
      }
      const after = await TestClient.open(`ws://127.0.0.1:${service.port}/ws`);
      clients.push(after);
      await after.start({ pipeline: 'big-chunks', options: { count: 3, sizeBytes: 1024, consumerDelayMs: 0 } });
      const stopped = await after.waitFor((m) => m.type === 'stopped', 'stopped');
      assert.equal(stopped.reason, 'completed');
      assert.deepEqual(after.transcripts().map((m) => m.data), [1, 2, 3]);
      service.child.kill('SIGTERM');
      assert.equal(await service.exited, 0);
      assert.deepEqual(fs.readdirSync(spoolRoot), [kept], 'a clean stop removes its own spools only');
    } finally {
      for (const c of clients) c.terminate();
      service?.child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
