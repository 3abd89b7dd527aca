import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { decodeRecords, parseSegmentName } from '../src/spool/log.js';
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

/**
 * Reads every chunk segment of a spool folder as recovery would: the whole records before the
 * first bad one (each must also pass the fixture's own check), and the bytes of a torn tail.
 */
function readChunkLog(dir: string): { records: number; tornBytes: number; problems: string[]; other: string[] } {
  let records = 0;
  let tornBytes = 0;
  const problems: string[] = [];
  const other: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const seg = parseSegmentName(name);
    if (!seg) {
      other.push(name);
      continue;
    }
    if (seg.kind !== 'chunks') continue;
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path.join(dir, name));
    } catch (err) {
      // While the service runs it removes a segment once every chunk in it was consumed: one
      // listed a moment ago may be gone, and holds no visible chunk. (After kill -9 nothing removes.)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const decoded = decodeRecords(buf, 0, seg.firstSeq);
    for (const r of decoded.records) {
      const problem = chunkProblem(Buffer.from(r.payload));
      if (problem) problems.push(`${name} seq ${r.seq}: ${problem}`);
      records++;
    }
    tornBytes += buf.byteLength - decoded.validEnd;
  }
  return { records, tornBytes, problems, other };
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
        () => fs.readdirSync(spoolRoot).reduce((n, id) => n + readChunkLog(path.join(spoolRoot, id)).records, 0) >= 6,
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

      // Every record before a segment's first bad one is whole; only a torn tail may follow it.
      const crashed = fs.readdirSync(spoolRoot).sort();
      assert.equal(crashed.length, 3, 'the crash left three spools');
      let checked = 0;
      let torn = 0;
      for (const id of crashed) {
        const log = readChunkLog(path.join(spoolRoot, id));
        assert.deepEqual(log.problems, [], `whole records in ${id}`);
        assert.deepEqual(log.other.filter((n) => n !== '.keep'), [], `only segments in ${id}`);
        checked += log.records;
        torn += log.tornBytes;
      }
      t.diagnostic(`after kill -9: ${checked} whole chunk records; ${torn} torn tail bytes (never published)`);
      assert.ok(checked >= 6);

      // Restart on the same DATA_DIR: crashed spools go, the kept one stays, sessions work again.
      service = await startService(dataDir);
      const recovery = service.logs.find((l) => l.msg === 'removed spools left by an earlier crash');
      assert.equal(recovery?.count, 2, 'the start-up log says how many spools it removed');
      assert.deepEqual(fs.readdirSync(spoolRoot), [kept]);
      // The kept spool was repaired: every segment is whole records to its last byte.
      const keptLog = readChunkLog(path.join(spoolRoot, kept));
      assert.deepEqual([keptLog.problems, keptLog.tornBytes], [[], 0]);
      assert.ok(keptLog.records >= 1);
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
