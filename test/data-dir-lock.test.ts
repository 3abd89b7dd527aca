import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../src/data-dir-lock.js';
import { assertInOrder, TestClient } from './helpers/client.js';

const main = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Service {
  child: ChildProcess;
  /** Resolves with the port once it listens; rejects if it exits first. */
  port: Promise<number>;
  exited: Promise<number | null>;
  stderr(): string;
}

function spawnService(dataDir: string, env: Record<string, string> = {}): Service {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /"address":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`service exited with ${code} before listening: ${stderr}`)));
  });
  port.catch(() => {});
  return { child, port, exited, stderr: () => stderr };
}

function tempDataDir(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-lock-')), 'data');
}

describe('one instance per DATA_DIR', () => {
  it('refuses a second instance on the same DATA_DIR with exit 2 naming it and the holder; the first one streams on with no gap', async () => {
    const dataDir = tempDataDir();
    const first = spawnService(dataDir);
    let client: TestClient | undefined;
    try {
      const port = await first.port;
      client = await TestClient.open(`ws://127.0.0.1:${port}/ws`);
      const id = await client.start({ options: { intervalMs: 10 } });
      await client.waitForTranscripts(5);

      const second = spawnService(dataDir);
      assert.equal(await second.exited, 2, second.stderr());
      assert.match(second.stderr(), /refusing to start/);
      assert.ok(second.stderr().includes(`DATA_DIR ${dataDir}`), second.stderr());
      assert.ok(second.stderr().includes(`pid ${first.child.pid}`), second.stderr());

      // The first instance's session and its spool are untouched: it goes on, in order, no gap.
      assert.ok(fs.existsSync(path.join(dataDir, 'spool', id)), 'the live spool is still there');
      const seen = client.transcripts().length;
      await client.waitForTranscripts(seen + 20);
      client.send({ command: 'STOP' });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
      assert.equal(stopped.reason, 'client');
      assertInOrder(client.transcripts());
      assert.deepEqual(client.messages.filter((m) => m.type === 'error'), []);

      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      assert.ok(!fs.existsSync(path.join(dataDir, LOCK_FILE)), 'a clean exit releases the lock');
    } finally {
      client?.terminate();
      first.child.kill('SIGKILL');
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('takes over the lock of an instance killed with -9', async () => {
    const dataDir = tempDataDir();
    const first = spawnService(dataDir);
    let next: Service | undefined;
    try {
      await first.port;
      const held = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8')) as { pid: number };
      assert.equal(held.pid, first.child.pid);
      first.child.kill('SIGKILL');
      await first.exited;
      assert.ok(fs.existsSync(path.join(dataDir, LOCK_FILE)), 'kill -9 leaves the lock file behind');

      next = spawnService(dataDir);
      const port = await next.port;
      const taken = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8')) as { pid: number };
      assert.equal(taken.pid, next.child.pid);
      const client = await TestClient.open(`ws://127.0.0.1:${port}/ws`);
      await client.start({ options: { intervalMs: 5 } });
      await client.waitForTranscripts(3);
      client.terminate();
      next.child.kill('SIGTERM');
      assert.equal(await next.exited, 0);
    } finally {
      first.child.kill('SIGKILL');
      next?.child.kill('SIGKILL');
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('a second instance on the same port fails on the port before it touches any data', async () => {
    const dataDir = tempDataDir();
    const first = spawnService(dataDir);
    try {
      const port = await first.port;
      const lockBefore = fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8');
      const otherDataDir = tempDataDir();
      const second = spawnService(otherDataDir, { PORT: String(port) });
      assert.equal(await second.exited, 2, second.stderr());
      assert.match(second.stderr(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
      assert.ok(!fs.existsSync(otherDataDir), 'its DATA_DIR was never created');
      // Same port and same DATA_DIR: the port refuses it first; the first one's lock is untouched.
      const third = spawnService(dataDir, { PORT: String(port) });
      assert.equal(await third.exited, 2, third.stderr());
      assert.match(third.stderr(), /EADDRINUSE/);
      assert.equal(fs.readFileSync(path.join(dataDir, LOCK_FILE), 'utf8'), lockBefore);
      fs.rmSync(path.dirname(otherDataDir), { recursive: true, force: true });
    } finally {
      first.child.kill('SIGKILL');
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});

describe('the DATA_DIR lock itself', () => {
  it('refuses a second holder in the same process and frees the folder on release, twice safely', async () => {
    const dataDir = tempDataDir();
    try {
      const lock = await lockDataDir(dataDir);
      await assert.rejects(lockDataDir(dataDir), (err: unknown) => err instanceof DataDirLockedError && err.holder?.pid === process.pid);
      await lock.release();
      await lock.release();
      assert.ok(!fs.existsSync(path.join(dataDir, LOCK_FILE)));
      await (await lockDataDir(dataDir)).release();
    } finally {
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('takes over a lock whose pid is alive but is another process (pid reuse), and one with a dead pid', async () => {
    const dataDir = tempDataDir();
    try {
      const lock = await lockDataDir(dataDir);
      const held = JSON.parse(fs.readFileSync(lock.path, 'utf8')) as Record<string, unknown>;
      await lock.release();
      // Our own, live pid, with another start time: what a reused pid looks like.
      fs.writeFileSync(lock.path, JSON.stringify({ ...held, instanceId: 'reused', processStartTicks: '1' }));
      const taken = await lockDataDir(dataDir);
      assert.notEqual(taken.holder.instanceId, 'reused');
      await taken.release();
      // A pid no process has (above the kernel's pid_max).
      fs.writeFileSync(lock.path, JSON.stringify({ ...held, instanceId: 'dead', pid: 2 ** 22 + 1 }));
      await (await lockDataDir(dataDir)).release();
    } finally {
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('refuses while an unreadable lock is fresh (being written) and takes it over once it is old', async () => {
    const dataDir = tempDataDir();
    try {
      fs.mkdirSync(dataDir, { recursive: true });
      const lockPath = path.join(dataDir, LOCK_FILE);
      fs.writeFileSync(lockPath, '{"pid":');
      await assert.rejects(lockDataDir(dataDir), (err: unknown) => err instanceof DataDirLockedError && err.holder === null && err.message.includes(lockPath));
      const old = new Date(Date.now() - 60_000);
      fs.utimesSync(lockPath, old, old);
      const lock = await lockDataDir(dataDir);
      assert.equal(JSON.parse(fs.readFileSync(lockPath, 'utf8')).instanceId, lock.holder.instanceId);
      await lock.release();
      assert.deepEqual(fs.readdirSync(dataDir), [], 'nothing left beside it (no file moved aside)');
    } finally {
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });

  it('does not release a lock that is no longer its own', async () => {
    const dataDir = tempDataDir();
    try {
      const lock = await lockDataDir(dataDir);
      const other = JSON.stringify({ ...JSON.parse(fs.readFileSync(lock.path, 'utf8')), instanceId: 'someone-else' });
      fs.writeFileSync(lock.path, other);
      await lock.release();
      assert.equal(fs.readFileSync(lock.path, 'utf8'), other);
    } finally {
      fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});
