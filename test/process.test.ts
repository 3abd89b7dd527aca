import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';

const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

describe('the process', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} tells every client "shutdown", closes 1001, stops every session and exits 0`, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-proc-'));
      const child = spawn(process.execPath, [main], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        const lines = readline.createInterface({ input: child.stdout! });
        const port = await new Promise<number>((resolve, reject) => {
          lines.on('line', (line) => {
            const m = /"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(line);
            if (m) resolve(Number(m[1]));
          });
          child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
        });
        const clients = await Promise.all([1, 2, 3].map(() => TestClient.open(`ws://127.0.0.1:${port}/ws`)));
        await Promise.all(clients.map((c) => c.start({ options: { intervalMs: 10 } })));
        await Promise.all(clients.map((c) => c.waitForTranscripts(2)));
        assert.equal(fs.readdirSync(path.join(dataDir, 'spool')).length, 3);

        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        child.kill(signal);
        for (const c of clients) {
          const stopped = await c.waitFor((m) => m.type === 'stopped', 'stopped');
          assert.equal(stopped.reason, 'shutdown');
          assert.equal(await c.waitClose(), 1001);
        }
        assert.equal(await exited, 0);
        assert.deepEqual(fs.readdirSync(path.join(dataDir, 'spool')), []);
      } finally {
        child.kill('SIGKILL');
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }

  it('exits on SIGTERM as soon as it has nothing to stop, and logs that it stopped', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-proc-'));
    // Grace and shutdown bounds far beyond the wait below: exiting must not wait for either.
    const child = spawn(process.execPath, [main], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', STOP_GRACE_MS: '120000', SHUTDOWN_TIMEOUT_MS: '300000' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines = readline.createInterface({ input: child.stdout! });
      const logged: Record<string, unknown>[] = [];
      const allRead = new Promise((r) => lines.once('close', r));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        lines.on('line', (line) => {
          logged.push(JSON.parse(line) as Record<string, unknown>);
          if (line.includes('tandem listening')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
      });
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'still running'>((r) => setTimeout(r, 30_000, 'still running').unref())]);
      assert.equal(code, 0);
      await allRead;
      const stopped = logged.find((l) => l.msg === 'tandem stopped');
      assert.ok(stopped, `logs "tandem stopped": ${JSON.stringify(logged.map((l) => l.msg))}`);
      assert.equal(stopped.signal, 'SIGTERM');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
