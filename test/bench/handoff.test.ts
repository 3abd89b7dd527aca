import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { wsTextFrame } from '../../bench/handoff.js';
import type { ChildMessage } from '../../bench/child-stats.js';
import { assertServerMessage } from '../helpers/client.js';

const childFile = fileURLToPath(new URL('../../bench/bare-ws-child.js', import.meta.url));

interface Received {
  session: string;
  transcripts: number[];
  /** Transcripts that came after `stopped`. */
  afterStopped: number;
  stopped: boolean;
  closeCode: number | null;
}

/** A client of the bare ws child: its messages checked against asyncapi.yaml, its transcripts' seqs kept. */
class Client {
  readonly ws: WebSocket;
  readonly got: Received = { session: '', transcripts: [], afterStopped: 0, stopped: false, closeCode: null };
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw)) as { type: string; session: string; seq: number };
      assertServerMessage(msg);
      if (msg.type === 'started') this.got.session = msg.session;
      else if (msg.type === 'stopped') this.got.stopped = true;
      else if (msg.type === 'transcript') {
        assert.equal(msg.session, this.got.session, 'a transcript of another connection');
        if (this.got.stopped) this.got.afterStopped++;
        this.got.transcripts.push(msg.seq);
      }
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

  it("delivers each connection's frames whole and in order, none after `stopped`, and none to the next socket after one is cut off", async () => {
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

    // An abrupt close (no close frame): the worker is off the descriptor before it closes, so the
    // sockets opened next (which the kernel may give the same descriptor) get only their own frames.
    const seen = b.got.transcripts.length;
    await b.until((r) => r.transcripts.length >= seen + 5, '5 more transcripts after the other STOP');
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
