import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeTextFrame, wsTextFrame } from '../../src/ws/frames.js';
import { SocketSlots, ThreadSocketWriter, type SocketSlot } from '../../src/ws/socket-slots.js';

/**
 * The slot protocol of ws/socket-slots.ts on real loopback sockets: a ThreadSocketWriter (here on
 * the test's own thread, as a step thread uses it) and the main thread's SocketSlot taking turns on
 * one server-side socket, and what its client reads.
 */

const WRITE_MAX = 4096;

/** The text frames in `bytes`, as the unmasked frames a server sends (RFC 6455, 5.2). */
function parseFrames(bytes: Buffer): { texts: string[]; leftover: number } {
  const texts: string[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    assert.equal(bytes[at], 0x81, `a text frame begins at byte ${at}`);
    let n = bytes[at + 1]!;
    let head = 2;
    if (n === 126) {
      if (at + 4 > bytes.length) break;
      n = bytes.readUInt16BE(at + 2);
      head = 4;
    } else assert.ok(n < 126, 'no frame here is longer than 64 KiB');
    if (at + head + n > bytes.length) break;
    texts.push(bytes.subarray(at + head, at + head + n).toString('utf8'));
    at += head + n;
  }
  return { texts, leftover: bytes.length - at };
}

/** A connected pair on 127.0.0.1: the server's side (whose slot is taken) and the client's. */
async function socketPair(server: net.Server): Promise<{ srv: net.Socket; client: net.Socket; received: Buffer[] }> {
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const received: Buffer[] = [];
  client.on('data', (b: Buffer) => received.push(b));
  const [srv] = await accepted;
  await once(client, 'connect').catch(() => undefined);
  return { srv, client, received };
}

const text = (seq: number, pad = 0) => JSON.stringify({ seq, pad: 'x'.repeat(pad) });
const frameOf = (seqs: number[], pad = 0) => (i: number, into: Buffer, at: number) => writeTextFrame(text(seqs[i]!, pad), into, at);
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('socket slots: which thread writes a client socket', () => {
  let server: net.Server;
  let slots: SocketSlots;
  let writer: ThreadSocketWriter;

  before(async () => {
    server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    slots = new SocketSlots({ sockets: 8, writeMaxBytes: WRITE_MAX });
    writer = new ThreadSocketWriter(slots.buffers);
  });
  after(() => server.close());

  /** The seqs the client read so far (every byte a whole frame once it all arrived). */
  async function readSeqs(received: Buffer[], until: (seqs: number[]) => boolean): Promise<number[]> {
    for (let i = 0; i < 2000; i++) {
      const { texts } = parseFrames(Buffer.concat(received));
      const seqs = texts.map((t) => (JSON.parse(t) as { seq: number }).seq);
      if (until(seqs)) return seqs;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('the client did not read what was expected');
  }

  it('writes each result once and in order, only from the one after the last written', async () => {
    const { srv, client, received } = await socketPair(server);
    const slot = slots.attach(srv)!;
    assert.ok(slot);
    // Held by the main thread until enabled: a step thread writes nothing.
    assert.equal(writer.write(slot.index, slot.id, 1, 1, frameOf([1])), 0);
    slot.enable(() => true);
    await tick();
    assert.equal(writer.write(slot.index, slot.id, 1, 3, frameOf([1, 2, 3])), 3);
    // The same step run again (rolled back) with one more result: only the new one goes out.
    assert.equal(writer.write(slot.index, slot.id, 2, 3, frameOf([2, 3, 4])), 1);
    // A gap (5 not written yet): nothing, the main thread sends it in order.
    assert.equal(writer.write(slot.index, slot.id, 6, 1, frameOf([6])), 0);
    // Another socket's id (a stale one): nothing.
    assert.equal(writer.write(slot.index, slot.id + 1, 5, 1, frameOf([5])), 0);
    assert.equal(slot.sent, 4);
    // The main thread sends 5 itself: it takes the slot, and holds it while its bytes are queued.
    slot.take();
    assert.equal(writer.write(slot.index, slot.id, 5, 1, frameOf([5])), 0, 'the main thread holds the slot');
    srv.write(wsTextFrame(text(5)));
    slot.sent = 5;
    await tick();
    assert.equal(writer.write(slot.index, slot.id, 6, 1, frameOf([6])), 1, 'given back once its bytes went out');
    assert.deepEqual(await readSeqs(received, (s) => s.length >= 6), [1, 2, 3, 4, 5, 6]);
    client.destroy();
    srv.destroy();
  });

  it('leaves a half-written frame\'s rest to the main thread, which writes it before anything else', async () => {
    const { srv, client, received } = await socketPair(server);
    client.pause(); // the client stops reading: the kernel's buffers fill
    const slot = slots.attach(srv)!;
    slot.enable(() => true);
    await tick();
    let seq = 0;
    // ~1 KiB frames, three a write, until the socket takes one only in part.
    for (let writes = 0; !slot.restLeft; writes++) {
      assert.ok(writes < 100_000, 'the socket never filled');
      const seqs = [seq + 1, seq + 2, seq + 3];
      const wrote = writer.write(slot.index, slot.id, seq + 1, 3, frameOf(seqs, 1000));
      if (wrote === 0) {
        // The socket took nothing (EAGAIN): the slot stays the threads', no seq moved.
        assert.equal(slot.sent, seq);
        assert.equal(slot.restLeft, false);
        continue;
      }
      seq += wrote;
      assert.equal(slot.sent, seq);
    }
    // The rest is the main thread's to write: the threads are off the slot until it drained.
    assert.equal(writer.write(slot.index, slot.id, seq + 1, 1, frameOf([seq + 1])), 0);
    slot.take(); // writes the rest first (queued by Node: the socket is full)
    assert.equal(slot.restLeft, false);
    srv.write(wsTextFrame(text(seq + 1)));
    slot.sent = seq + 1;
    client.resume();
    const last = seq + 1;
    const seqs = await readSeqs(received, (s) => s.length >= last);
    assert.deepEqual(seqs, Array.from({ length: last }, (_, i) => i + 1), 'every frame whole, once, in order');
    assert.equal(parseFrames(Buffer.concat(received)).leftover, 0);
    client.destroy();
    srv.destroy();
  });

  it("writes the main thread's ping straight in between whole frames, only while the slot is the threads' and the socket takes it", async () => {
    const { srv, client, received } = await socketPair(server);
    const slot = slots.attach(srv)!;
    let open = true;
    // Held by the main thread until enabled: the ping is left to ws (which queues it).
    assert.equal(slot.ping(), false);
    slot.enable(() => open);
    await tick();
    assert.equal(writer.write(slot.index, slot.id, 1, 2, frameOf([1, 2])), 2);
    assert.equal(slot.ping(), true);
    assert.equal(writer.write(slot.index, slot.id, 3, 1, frameOf([3])), 1, 'the slot is the threads\' again after the ping');
    const want = Buffer.concat([wsTextFrame(text(1)), wsTextFrame(text(2)), Buffer.from([0x89, 0x00]), wsTextFrame(text(3))]);
    for (let i = 0; i < 400 && Buffer.concat(received).length < want.length; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(Buffer.concat(received), want, 'the ping frame whole, between two whole frames');
    // Once the protocol's close began (the socket is no longer open), no ping.
    open = false;
    assert.equal(slot.ping(), false);
    open = true;
    // While the main thread holds the slot (its own bytes may be queued), no ping.
    slot.take();
    assert.equal(slot.ping(), false);
    await tick();
    // A socket whose buffers are full takes nothing: no ping, and the slot stays the threads'.
    client.pause();
    const fd = (srv as unknown as { _handle: { fd: number } })._handle.fd;
    const filler = Buffer.alloc(64 * 1024);
    for (let i = 0; ; i++) {
      assert.ok(i < 10_000, 'the socket never filled');
      try {
        fs.writeSync(fd, filler);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EAGAIN');
        break;
      }
    }
    assert.equal(slot.ping(), false);
    assert.equal(writer.write(slot.index, slot.id, 4, 1, frameOf([4])), 0, 'the socket takes nothing');
    assert.equal(slot.restLeft, false, 'and no rest was left: the slot is still the threads\'');
    client.destroy();
    srv.destroy();
  });

  it('writes nothing once the socket closed, not even into the file that gets its descriptor number next', async () => {
    const { srv, client } = await socketPair(server);
    const slot: SocketSlot = slots.attach(srv)!;
    slot.enable(() => true);
    await tick();
    const inUse = slots.inUse;
    srv.destroy();
    await once(srv, 'close');
    assert.equal(slots.inUse, inUse - 1, 'the slot is free for another socket');
    // The kernel hands out the lowest free number: a file opened now likely gets the socket's.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-slots-')), 'f');
    const fd = fs.openSync(file, 'w');
    try {
      assert.equal(writer.write(slot.index, slot.id, 1, 1, frameOf([1])), 0);
      assert.equal(fs.statSync(file).size, 0, 'nothing went into the file');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      client.destroy();
    }
  });
});
