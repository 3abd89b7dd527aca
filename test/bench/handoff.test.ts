import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { Handoff, MAP_WINDOW_BYTES, MappedLog, demoText, wsTextFrame } from '../../bench/handoff.js';
import type { ChildMessage } from '../../bench/child-stats.js';
import { assertServerMessage } from '../helpers/client.js';

const childFile = fileURLToPath(new URL('../../bench/bare-ws-child.js', import.meta.url));

interface Received {
  session: string;
  transcripts: number[];
  /** Transcripts that came after `stopped`. */
  afterStopped: number;
  stopped: boolean;
  /** What `stopped` said was sent. */
  stoppedChunks: number;
  pongs: number;
  closeCode: number | null;
}

/** A client of the bare ws child: its messages checked against asyncapi.yaml, its transcripts' seqs kept. */
class Client {
  readonly ws: WebSocket;
  readonly got: Received = { session: '', transcripts: [], afterStopped: 0, stopped: false, stoppedChunks: -1, pongs: 0, closeCode: null };
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as { type: string; session: string; seq: number; chunks: number };
      assertServerMessage(msg);
      if (msg.type === 'started') this.got.session = msg.session;
      else if (msg.type === 'stopped') {
        this.got.stopped = true;
        this.got.stoppedChunks = msg.chunks;
      }
      else if (msg.type === 'transcript') {
        assert.equal(msg.session, this.got.session, 'a transcript of another connection');
        if (this.got.stopped) this.got.afterStopped++;
        this.got.transcripts.push(msg.seq);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.ws.on('pong', () => {
      this.got.pongs++;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => ((this.got.closeCode = code), resolve())));
  }

  async open(): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) await new Promise((resolve) => this.ws.once('open', resolve));
  }

  send(cmd: object): void {
    this.ws.send(JSON.stringify(cmd));
  }

  async until(pred: (r: Received) => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.got)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.got)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }
}

const consecutive = (seqs: number[]) => seqs.every((s, i) => s === i + 1);

describe('the hand-off floor with the worker writing into the sockets (bench/handoff.ts, BARE_WS_HANDOFF_SEND=worker)', () => {
  let child: ChildProcess;
  let url = '';
  let dir = '';

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-handoff-'));
    child = fork(childFile, [], {
      env: { ...process.env, DATA_DIR: dir, BARE_WS_HANDOFF: '2', BARE_WS_HANDOFF_TIMER: 'worker', BARE_WS_HANDOFF_SEND: 'worker' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the child exited with ${code} before it was ready`)));
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') resolve(m.port);
      });
    });
    url = `ws://127.0.0.1:${port}/ws`;
  });

  after(async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send({ type: 'close' });
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('frames as ws does: a length of 7, 16 or 64 bits, and the text whole', () => {
    for (const [n, head] of [
      [125, [0x81, 125]],
      [126, [0x81, 126, 0, 126]],
      [70_000, [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]],
    ] as const) {
      const frame = wsTextFrame('x'.repeat(n));
      assert.deepEqual([...frame.subarray(0, head.length)], head, `the header of ${n} bytes`);
      assert.equal(frame.length, head.length + n);
    }
  });

  it("delivers each connection's frames whole and in order, through a ping and none after `stopped`, and none to the sockets opened after one is cut off", async () => {
    const a = new Client(url);
    const b = new Client(url);
    await Promise.all([a.open(), b.open()]);
    for (const c of [a, b]) c.send({ command: 'START', options: { intervalMs: 20 } });
    await Promise.all([a, b].map((c) => c.until((r) => r.transcripts.length >= 10, '10 transcripts')));

    // A STOP: the worker is off the socket before `stopped` is sent.
    a.send({ command: 'STOP' });
    await a.closed;
    assert.equal(a.got.closeCode, 1000);
    assert.equal(a.got.stopped, true);
    assert.equal(a.got.afterStopped, 0, 'no transcript after stopped');
    assert.ok(consecutive(a.got.transcripts), `seqs 1..n: ${a.got.transcripts.join(',')}`);
    assert.equal(a.got.stoppedChunks, a.got.transcripts.length, 'stopped counts the frames the worker wrote');

    // A ping: ws answers it on the main thread, which takes the socket from the worker for good;
    // the frames after it come through the main thread, still one after another.
    const seen = b.got.transcripts.length;
    b.ws.ping();
    await b.until((r) => r.pongs === 1 && r.transcripts.length >= seen + 5, 'the pong and 5 more transcripts');

    // An abrupt close (no close frame), then new sockets, which the kernel may give its descriptor.
    b.ws.terminate();
    await b.closed;
    assert.ok(consecutive(b.got.transcripts), `seqs 1..n: ${b.got.transcripts.join(',')}`);
    const next = [new Client(url), new Client(url), new Client(url)];
    await Promise.all(next.map((c) => c.open()));
    for (const c of next) c.send({ command: 'START', options: { intervalMs: 20 } });
    await Promise.all(next.map((c) => c.until((r) => r.transcripts.length >= 10, '10 transcripts on a new socket')));
    for (const c of next) {
      assert.ok(consecutive(c.got.transcripts), `seqs 1..n: ${c.got.transcripts.join(',')}`);
      c.ws.terminate();
    }
    await Promise.all(next.map((c) => c.closed));
  });
});

describe("the hand-off's worker and a descriptor the main thread closed (bench/handoff.ts)", () => {
  it('writes nothing into the file that gets the closed socket\'s descriptor number next', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-handoff-fd-'));
    const handoff = new Handoff(dir, 0, 'worker', 'worker');
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = await accepted;
    let received = 0;
    client.on('data', (b: Buffer) => (received += b.length));
    // A frame every tick, written by the worker into the socket.
    handoff.feed(5, { socket, session: 'fd-reuse', isOpen: () => !socket.destroyed });
    const deadline = Date.now() + 10_000;
    while (received === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(received > 0, 'the worker wrote frames into the socket');

    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    socket.destroy(); // closes the descriptor at once
    const file = path.join(dir, 'reused');
    // The kernel gives the lowest free number: a lower one something else of this process freed
    // meanwhile (the last test's sockets closing) is taken by a placeholder until the file gets
    // the socket's number (once a fresh-clone run got 24 where the socket's was 25).
    const placeholders: number[] = [];
    let reused = fs.openSync(file, 'w');
    while (reused < fd && placeholders.length < 64) {
      placeholders.push(reused);
      reused = fs.openSync(file, 'w');
    }
    for (const p of placeholders) fs.closeSync(p);
    try {
      assert.equal(reused, fd, "the premise: the file got the socket's descriptor number");
      await new Promise((r) => setTimeout(r, 300)); // 60 of the worker's ticks
      assert.equal(fs.statSync(file).size, 0, 'no frame went into the file');
    } finally {
      fs.closeSync(reused);
      client.destroy();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The records of a log file (bench/fs-cost.ts's frame), up to its end or the zeros of a reserved tail; each checked whole. */
function readRecords(bytes: Buffer): Array<{ seq: number; text: string; end: number }> {
  const records: Array<{ seq: number; text: string; end: number }> = [];
  for (let at = 0; at < bytes.length; ) {
    assert.ok(at + 16 <= bytes.length, `a torn header at ${at}`);
    const length = bytes.readUInt32LE(at);
    if (length === 0 && bytes.readUInt32LE(at + 12) === 0) break; // the reserved, unwritten rest of a mapped window
    const payload = bytes.subarray(at + 16, at + 16 + length);
    assert.equal(payload.length, length, `a torn payload at ${at}`);
    assert.equal(bytes.readUInt32LE(at + 12), zlib.crc32(payload), `the checksum of the record at ${at}`);
    records.push({ seq: bytes.readUInt32LE(at + 4) + bytes.readUInt32LE(at + 8) * 0x1_0000_0000, text: payload.toString('utf8'), end: at + 16 + length });
    at += 16 + length;
  }
  return records;
}

describe("the hand-off's log per thread (bench/handoff.ts, BARE_WS_HANDOFF_LOG=thread)", () => {
  it("puts every connection's chunk and result records in one log, whole, the chunk first, both before the frame is sent", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-handoff-log-'));
    const file = path.join(dir, 'thread.log');
    const handoff = new Handoff(dir, 2, 'worker', 'main', 'thread');
    /** Per connection, each frame sent: its seq, its time, and the log's size when it was sent. */
    const sent = new Map<number, Array<{ seq: number; producedAt: number; logBytes: number }>>();
    const feeds = [1, 2, 3].map((c) => {
      sent.set(c, []);
      return handoff.feed(5, { send: (seq, producedAt) => sent.get(c)!.push({ seq, producedAt, logBytes: fs.statSync(file).size }) });
    });
    try {
      const deadline = Date.now() + 10_000;
      while ([...sent.values()].some((frames) => frames.length < 10) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const feed of feeds) feed.stop();
      await new Promise((r) => setTimeout(r, 50)); // an answer on its way is sent, then nothing more

      // Every record whole: its length, seq and checksum hold.
      const bytes = fs.readFileSync(file);
      const records = readRecords(bytes);
      assert.equal(records.at(-1)?.end, bytes.length, 'the log ends at its last record');
      for (const [c, frames] of sent) {
        assert.ok(frames.length >= 10, `connection ${c} got 10 frames`);
        frames.forEach((f, i) => assert.equal(f.seq, i + 1, `connection ${c}'s frames in order`));
        for (const f of frames) {
          const text = demoText(f.seq, f.producedAt);
          const chunk = records.findIndex((r) => r.seq === f.seq && r.text === text);
          const result = records.findIndex((r) => r.seq === f.seq && r.text === JSON.stringify(text));
          assert.ok(chunk >= 0 && result >= 0, `connection ${c}'s frame ${f.seq} has its chunk and result records`);
          assert.ok(chunk < result, `frame ${f.seq}: the chunk before the result`);
          assert.ok(records[result]!.end <= f.logBytes, `frame ${f.seq} was sent after both its records were in the log`);
        }
      }
      // One log for all: no file of a connection's own.
      assert.deepEqual(fs.readdirSync(dir), ['thread.log']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a log appended through a mapping (bench/handoff.ts MappedLog, BARE_WS_HANDOFF_LOG=mapped)', () => {
  it('holds every byte appended, in order, across windows, as `read` sees it before close, and is cut to them at close', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-mapped-'));
    const file = path.join(dir, 'log');
    try {
      const log = new MappedLog(file);
      const parts: Buffer[] = [];
      // Lengths that never divide the window: records cross its end, and the last spans a whole window.
      for (let i = 0; i < 700; i++) parts.push(Buffer.alloc(97 + (i % 13) * 11, i % 251));
      parts.push(Buffer.alloc(MAP_WINDOW_BYTES + 5, 7));
      for (const p of parts) log.append(p);
      const expected = Buffer.concat(parts);
      assert.ok(expected.length > 2 * MAP_WINDOW_BYTES, 'the appends span more than two windows');
      // Before close: `read` sees every byte through the same page cache; the file holds the reserved window's zeros past them.
      const before = fs.readFileSync(file);
      assert.ok(before.subarray(0, expected.length).equals(expected), 'every byte appended, in order, seen by read before close');
      assert.equal(before.length % MAP_WINDOW_BYTES, 0, 'the file is reserved a window at a time');
      assert.ok(before.subarray(expected.length).every((b) => b === 0), 'nothing but zeros past the appended bytes');
      log.close();
      const after = fs.readFileSync(file);
      assert.equal(after.length, expected.length, 'close cuts the file to the bytes appended');
      assert.ok(after.equals(expected));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("puts each connection's chunk and result records in its own two files, whole, both before the frame is sent", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-handoff-mapped-'));
    const handoff = new Handoff(dir, 2, 'worker', 'main', 'mapped');
    /** Per connection, each frame sent: its seq, its time, and the records its two files held when it was sent. */
    const sent = new Map<number, Array<{ seq: number; producedAt: number; chunks: string[]; results: string[] }>>();
    const texts = (c: number, name: string) => readRecords(fs.readFileSync(path.join(dir, `${c}.${name}`))).map((r) => `${r.seq} ${r.text}`);
    const feeds = [1, 2, 3].map((c) => {
      sent.set(c, []);
      return handoff.feed(5, { send: (seq, producedAt) => sent.get(c)!.push({ seq, producedAt, chunks: texts(c, 'chunks'), results: texts(c, 'results') }) });
    });
    try {
      const deadline = Date.now() + 10_000;
      while ([...sent.values()].some((frames) => frames.length < 10) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const feed of feeds) feed.stop();
      // The worker closes each connection's files when its stop reaches it: wait for all six to be cut.
      const cut = (c: number, name: string) => {
        const bytes = fs.readFileSync(path.join(dir, `${c}.${name}`));
        return readRecords(bytes).at(-1)?.end === bytes.length;
      };
      const closedBy = Date.now() + 10_000;
      while (![1, 2, 3].every((c) => cut(c, 'chunks') && cut(c, 'results')) && Date.now() < closedBy) await new Promise((r) => setTimeout(r, 10));
      for (const [c, frames] of sent) {
        assert.ok(frames.length >= 10, `connection ${c} got 10 frames`);
        frames.forEach((f, i) => assert.equal(f.seq, i + 1, `connection ${c}'s frames in order`));
        for (const f of frames) {
          const text = demoText(f.seq, f.producedAt);
          assert.ok(f.chunks.includes(`${f.seq} ${text}`), `connection ${c}'s frame ${f.seq}: its chunk record was in its chunks file before it was sent`);
          assert.ok(f.results.includes(`${f.seq} ${JSON.stringify(text)}`), `connection ${c}'s frame ${f.seq}: its result record was in its results file before it was sent`);
        }
        // Closed at stop: each file cut to its records, no reserved zeros left.
        for (const name of ['chunks', 'results']) {
          const bytes = fs.readFileSync(path.join(dir, `${c}.${name}`));
          const records = readRecords(bytes);
          assert.equal(records.at(-1)?.end, bytes.length, `connection ${c}'s ${name} file ends at its last record once closed`);
          assert.ok(records.length >= frames.length, `connection ${c}'s ${name} file holds a record per frame`);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
