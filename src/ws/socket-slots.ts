/**
 * Who may write a client's socket: the main thread, or a step thread that writes a live result's
 * frame into it itself (STEP_SENDS). Both threads import this module; it alone knows the layout.
 *
 * A step thread that has appended a session's results writes their `transcript` frames straight
 * into the socket's descriptor, so the result does not wait for its answer's trip to the main
 * thread and the main thread takes no part in sending it (docs/PERFORMANCE.md, "The worker writes
 * the frame"). A slot in shared memory per socket says who may write it:
 *
 * - its id (> 0): a step thread may take it, for one non-blocking write at a time;
 * - minus its id: a step thread is writing (it never waits holding the slot);
 * - 0: the main thread holds it.
 *
 * The main thread takes the slot before it writes anything itself (`started`, errors, results it
 * sends, a RESUME's replay, pings, `stopped`, and `ws`'s own answers to a client's ping or close:
 * the socket's `write` and `end` are wrapped), and for good before the descriptor can close (the
 * handle's `close` and `reset` are wrapped: the kernel may give the number to another file). It
 * gives the slot back once nothing of its own is queued on the socket, so frames never
 * interleave and never overtake one another.
 *
 * The slot also holds the seq of the last result written to the socket, by either thread. A step
 * thread writes a session's frames only in order right after it (the seq before its first frame
 * must be the one written last), and the main thread sends only results after it: a result is
 * written once, even when a step is rolled back and run again (pool/step-batcher.ts), or its
 * answer arrives after the frame left.
 *
 * A write the socket takes only in part (its buffers are full: a slow client) leaves the rest of
 * the frame in the slot's room in shared memory and the slot with the main thread, which writes
 * that rest before anything else; the slow-client policy (SEND_BUFFER_HIGH_BYTES) then applies as
 * for any frame the main thread queues.
 */
import fs from 'node:fs';
import type { Socket } from 'node:net';

/** The shared memory of every slot, as both threads get it (pool workerData). */
export interface SocketSlotBuffers {
  /** SLOT_INTS Int32s per slot: STATE, SENT, REST, FD. */
  ints: SharedArrayBuffer;
  /** writeMaxBytes per slot: the rest of a frame the socket did not take whole. */
  rests: SharedArrayBuffer;
  /** The most bytes a step thread writes in one call (STEP_SEND_WRITE_MAX_BYTES). */
  writeMaxBytes: number;
}

/** The limits of thread sends (config.ts). */
export interface SocketSlotLimits {
  /** Sockets a step thread may write to at once (STEP_SEND_SOCKETS); others are written by the main thread alone. */
  sockets: number;
  /** STEP_SEND_WRITE_MAX_BYTES: a step thread writes at most this much in one call; longer frames go through the main thread. */
  writeMaxBytes: number;
}

const SLOT_INTS = 4;
const STATE = 0;
const SENT = 1;
const REST = 2;
/** The socket's descriptor, for the step threads. */
const FD = 3;

/** A socket whose queued bytes have not drained yet: the slot is looked at again after this long, ms. */
const GIVE_BACK_RECHECK_MS = 10;
/**
 * How long the main thread waits out a step thread's write under way, at most, ms. A write is one
 * non-blocking call; only a thread ended in the middle of one (terminated as its step finished,
 * or out of heap) leaves the slot so for good. Past this the main thread takes the slot, and
 * closes the socket: the stream may hold half a frame. (A thread alive but off its cores this long
 * in the middle of one call is not a state this waits for.)
 */
const WRITE_WAIT_MAX_MS = 2000;
/** Looks at a slot under a write this many times before it sleeps between looks (1 ms each). */
const WRITE_WAIT_SPINS = 1000;
/** A server's ping frame with no payload (RFC 6455 5.5.2: FIN, opcode 0x9, unmasked, length 0). */
const PING_FRAME = Buffer.from([0x89, 0x00]);

/** What the slots use of a net.Socket's libuv handle (Node's internals: its descriptor, and the two ways it closes). */
export interface SocketHandle {
  fd: number;
  close(cb?: () => void): unknown;
  reset(cb?: () => void): unknown;
}

/**
 * Calls `beforeWrite` before anything is written to `socket` or it is ended by this thread, and
 * `beforeClose` before its descriptor can close (every close goes through its handle: `close`, or
 * `reset` for resetAndDestroy). Returns the socket's own `write`, unwrapped.
 */
export function guardSocket(socket: Socket, handle: SocketHandle, beforeWrite: () => void, beforeClose: () => void): (this: Socket, ...args: unknown[]) => unknown {
  const write = socket.write as (this: Socket, ...args: unknown[]) => unknown;
  for (const name of ['write', 'end'] as const) {
    const original = socket[name] as (this: Socket, ...args: unknown[]) => unknown;
    (socket as unknown as Record<typeof name, unknown>)[name] = function (this: Socket, ...args: unknown[]) {
      beforeWrite();
      return original.apply(this, args);
    };
  }
  for (const name of ['close', 'reset'] as const) {
    const original = handle[name].bind(handle);
    handle[name] = (cb) => {
      beforeClose();
      return original(cb);
    };
  }
  return write;
}

/** The main thread's side: the shared memory, and which slots are free. */
export class SocketSlots {
  readonly buffers: SocketSlotBuffers;
  readonly #ints: Int32Array;
  readonly #rests: Uint8Array;
  readonly #free: number[] = [];
  #nextId = 1;

  constructor(limits: SocketSlotLimits) {
    this.buffers = {
      ints: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * SLOT_INTS * limits.sockets),
      rests: new SharedArrayBuffer(limits.writeMaxBytes * limits.sockets),
      writeMaxBytes: limits.writeMaxBytes,
    };
    this.#ints = new Int32Array(this.buffers.ints);
    this.#rests = new Uint8Array(this.buffers.rests);
    for (let i = limits.sockets - 1; i >= 0; i--) this.#free.push(i);
  }

  /** Slots in use now. */
  get inUse(): number {
    return this.#ints.length / SLOT_INTS - this.#free.length;
  }

  /** A slot for `socket`, held by the main thread until enabled; null when none is free or the socket has no descriptor. */
  attach(socket: Socket): SocketSlot | null {
    const handle = (socket as unknown as { _handle: SocketHandle | null })._handle;
    if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || socket.destroyed) return null;
    const index = this.#free.pop();
    if (index === undefined) return null;
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fff_ffff ? 1 : this.#nextId + 1;
    return new SocketSlot(this.#ints, this.#rests, this.buffers.writeMaxBytes, index, id, socket, handle, () => this.#free.push(index));
  }
}

/** One socket's slot, as the main thread holds it. */
export class SocketSlot {
  readonly index: number;
  readonly id: number;
  readonly #ints: Int32Array;
  readonly #rests: Uint8Array;
  readonly #base: number;
  readonly #restAt: number;
  readonly #socket: Socket;
  readonly #write: (this: Socket, ...args: unknown[]) => unknown;
  readonly #freeSlot: () => void;
  /** Step threads may write while nothing of the main thread's is queued and this says so (enable / disable). */
  #enabled: (() => boolean) | null = null;
  #closed = false;
  /** `sent` when the slot closed (its memory may be another socket's since). */
  #sentAtClose = 0;
  /** A step thread's write never ended (WRITE_WAIT_MAX_MS): the slot is never used again. */
  #broken = false;
  #checkScheduled = false;
  #recheck: NodeJS.Timeout | null = null;

  constructor(ints: Int32Array, rests: Uint8Array, writeMaxBytes: number, index: number, id: number, socket: Socket, handle: SocketHandle, freeSlot: () => void) {
    this.index = index;
    this.id = id;
    this.#ints = ints;
    this.#rests = rests;
    this.#base = index * SLOT_INTS;
    this.#restAt = index * writeMaxBytes;
    this.#socket = socket;
    this.#freeSlot = freeSlot;
    Atomics.store(ints, this.#base + STATE, 0);
    Atomics.store(ints, this.#base + SENT, 0);
    Atomics.store(ints, this.#base + REST, 0);
    Atomics.store(ints, this.#base + FD, handle.fd);
    // Before this thread writes to the socket or ends it, the step threads are off it; and before
    // its descriptor can close, for good.
    this.#write = guardSocket(
      socket,
      handle,
      () => this.take(),
      () => this.close(),
    );
  }

  /** The seq of the last result written to this socket, by either thread (0: none). */
  get sent(): number {
    return this.#closed ? this.#sentAtClose : Atomics.load(this.#ints, this.#base + SENT);
  }

  /** Notes that the main thread wrote the result `seq` (it holds the slot). */
  set sent(seq: number) {
    if (this.#closed) this.#sentAtClose = seq;
    else Atomics.store(this.#ints, this.#base + SENT, seq);
  }

  /**
   * Step threads may write to the socket from now on, whenever nothing of the main thread's is
   * queued and `open()` holds (once the protocol's close has begun, nothing may follow its frame).
   */
  enable(open: () => boolean): void {
    if (this.#closed) return;
    this.#enabled = open;
    this.#scheduleCheck();
  }

  /** From now on only the main thread writes: waits out a step thread's write under way, writes its rest. */
  disable(): void {
    this.#enabled = null;
    this.take();
  }

  /**
   * The main thread holds the slot: a step thread's write under way is waited out (one call,
   * never more), and the rest of a frame it left half written goes out first. It is given back
   * once what the main thread queues has drained.
   */
  take(): void {
    if (this.#closed) return;
    const ints = this.#ints;
    const at = this.#base + STATE;
    const id = this.id;
    let waitedFrom = 0;
    for (let looks = 0; ; looks++) {
      const was = Atomics.compareExchange(ints, at, id, 0);
      if (was !== -id) break;
      // A write under way: it ends within a call, unless its thread was ended in the middle of it
      // (or is off its core: then the main thread sleeps rather than spin).
      if (looks < WRITE_WAIT_SPINS) continue;
      const now = performance.now();
      if (waitedFrom === 0) waitedFrom = now;
      else if (now - waitedFrom >= WRITE_WAIT_MAX_MS) {
        Atomics.store(ints, at, 0);
        this.#broken = true;
        this.#enabled = null;
        // Whatever that write left on the wire may be half a frame: the client resumes on a new connection.
        process.nextTick(() => this.#socket.destroy());
        break;
      }
      Atomics.wait(ints, at, -id, 1);
    }
    const rest = Atomics.load(ints, this.#base + REST);
    if (rest > 0) {
      Atomics.store(ints, this.#base + REST, 0);
      if (!this.#socket.destroyed) this.#write.call(this.#socket, Buffer.from(this.#rests.subarray(this.#restAt, this.#restAt + rest)));
    }
    this.#scheduleCheck();
  }

  /**
   * Writes a ping frame straight into the descriptor, as a step thread writes a result's frame:
   * only while the slot is the step threads' (nothing of this thread's is queued, the protocol's
   * close has not begun) and the socket takes the frame now. Returns false, having written
   * nothing, otherwise; the caller then pings through `ws`, which queues the frame. Written so, a
   * ping costs one system call, and none of the stream's and `ws`'s machinery
   * (docs/PERFORMANCE.md, "The heartbeat's pings straight into the descriptor").
   */
  ping(): boolean {
    if (this.#closed || !this.#enabled?.()) return false;
    const ints = this.#ints;
    const at = this.#base + STATE;
    const id = this.id;
    // As a step thread does: the slot is this thread's for one call (a step thread meanwhile finds it taken and leaves its frames to the answer).
    if (Atomics.compareExchange(ints, at, id, -id) !== id) return false;
    let written = 0;
    try {
      written = fs.writeSync(Atomics.load(ints, this.#base + FD), PING_FRAME, 0, PING_FRAME.length);
    } catch {
      // EAGAIN: the socket's buffers are full; or the peer is gone, which `ws` finds too.
    }
    if (written === PING_FRAME.length || written === 0) {
      Atomics.store(ints, at, id);
      return written > 0;
    }
    // Half a frame went out: its rest goes first, by the stream, and the slot is the main thread's until it drained.
    Atomics.store(ints, at, 0);
    this.#write.call(this.#socket, PING_FRAME.subarray(written));
    this.#scheduleCheck();
    return true;
  }

  /** Whether a step thread left the rest of a frame for the main thread to write. */
  get restLeft(): boolean {
    return Atomics.load(this.#ints, this.#base + REST) > 0;
  }

  /** The descriptor is about to close: the slot is the main thread's for good, and free for another socket. */
  close(): void {
    if (this.#closed) return;
    this.disable();
    this.#sentAtClose = this.sent;
    this.#closed = true;
    if (this.#recheck) clearTimeout(this.#recheck);
    this.#recheck = null;
    Atomics.store(this.#ints, this.#base + STATE, 0);
    // A broken slot's writer might yet wake: its memory is never given to another socket.
    if (!this.#broken) this.#freeSlot();
  }

  #scheduleCheck(): void {
    if (!this.#enabled || this.#checkScheduled || this.#closed) return;
    this.#checkScheduled = true;
    process.nextTick(this.#check);
  }

  /** Gives the slot back to the step threads once nothing of the main thread's is queued on the socket. */
  readonly #check = (): void => {
    this.#checkScheduled = false;
    if (!this.#enabled || this.#closed) return;
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded || !this.#enabled()) return;
    // A rest a step thread left goes out now, before the thread's next frame can be due.
    if (Atomics.load(this.#ints, this.#base + REST) > 0) this.take();
    if (socket.writableLength > 0) {
      this.#recheck ??= setTimeout(() => {
        this.#recheck = null;
        this.#check();
      }, GIVE_BACK_RECHECK_MS);
      return;
    }
    Atomics.compareExchange(this.#ints, this.#base + STATE, 0, this.id);
  };
}

/** A step thread's side: writes a session's frames into its client's socket when its slot allows. */
export class ThreadSocketWriter {
  readonly #ints: Int32Array;
  readonly #rests: Uint8Array;
  readonly #writeMaxBytes: number;
  readonly #buf: Buffer;
  /** The last write left the rest of a frame for the main thread (it has not reached the client yet). */
  restLeft = false;

  constructor(buffers: SocketSlotBuffers) {
    this.#ints = new Int32Array(buffers.ints);
    this.#rests = new Uint8Array(buffers.rests);
    this.#writeMaxBytes = buffers.writeMaxBytes;
    this.#buf = Buffer.allocUnsafe(buffers.writeMaxBytes);
  }

  /**
   * Writes the frames of results `firstSeq`, `firstSeq + 1`… (made by `frame(i, into, at)`, which
   * returns the bytes written or -1 when they do not fit) into the socket of `slot` (its `id`), in
   * one non-blocking call: only if the slot is the threads', and only from the result after the
   * last one written. Returns how many results it wrote (a frame whose rest it left counts);
   * those it did not write the main thread sends when their answer arrives.
   */
  write(slot: number, id: number, firstSeq: number, count: number, frame: (i: number, into: Buffer, at: number) => number): number {
    const ints = this.#ints;
    const base = slot * SLOT_INTS;
    this.restLeft = false;
    if (id <= 0 || Atomics.compareExchange(ints, base + STATE, id, -id) !== id) return 0;
    try {
      const sent = Atomics.load(ints, base + SENT);
      // Results before `sent` were written already (this step ran again); one after a gap waits for the main thread.
      const from = sent + 1 - firstSeq;
      if (from < 0 || from >= count) return 0;
      const buf = this.#buf;
      let bytes = 0;
      let n = 0;
      for (let i = from; i < count; i++) {
        const len = frame(i, buf, bytes);
        if (len < 0) break;
        bytes += len;
        n++;
      }
      if (n === 0) return 0;
      let written = 0;
      try {
        written = fs.writeSync(Atomics.load(ints, base + FD), buf, 0, bytes);
      } catch {
        // EAGAIN: the socket's buffers are full; or the peer is gone, which the main thread finds too.
      }
      // Taken from this thread meanwhile (its write outlived WRITE_WAIT_MAX_MS): the slot is not its own.
      if (written === 0 || Atomics.load(ints, base + STATE) !== -id) return 0;
      Atomics.store(ints, base + SENT, firstSeq + from + n - 1);
      if (written < bytes) {
        // A slow client: the rest first, by the main thread, which keeps the slot until it drained.
        this.#rests.set(buf.subarray(written, bytes), slot * this.#writeMaxBytes);
        Atomics.store(ints, base + REST, bytes - written);
        Atomics.store(ints, base + STATE, 0);
        this.restLeft = true;
      }
      return n;
    } finally {
      Atomics.compareExchange(ints, base + STATE, -id, id);
    }
  }
}
