import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { Handoff, wsTextFrame } from '../../bench/handoff.js';
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
    const reused = fs.openSync(file, 'w');
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
