/**
 * The cheapest shape of tandem's data path, for the `steady-handoff` floor: a frame is made on
 * another thread and its chunk and its result are on disk before it is sent, as the issue's
 * guarantees ask, with none of tandem's machinery. Every HANDOFF_TICK_MS (tandem's
 * STEP_TIMER_TICK_MS default) the main thread sends the connections that fell due to one worker
 * thread in one message (no Piscina, no promises, numbers only). A connection falls due as a
 * tandem session's step would: on the first boundary of the granularity tandem's timer wheel
 * gives its interval, with tandem's defaults (sessions/timer-wheel.ts), so both gather as many
 * frames a message. For each frame the worker appends one framed record (bench/fs-cost.ts's
 * format) to that connection's chunks file and one to its results file, both held open (or,
 * with `appends` 1, the frame alone to one file), and answers with the records' times in one
 * message; the main thread then sends the frames. What this costs per result, beside the bare
 * floor of the same load, is what a thread hop and tandem's two appends cost on this machine: the
 * part of tandem's CPU per result that any design keeping its guarantees pays.
 *
 * Five variants answer what a redesign would buy (docs/PERFORMANCE.md, "Even phases", "The
 * worker writes the frame", "A log per thread", "Records through a mapping"): with `appends` 0 the worker writes nothing (the
 * hop alone); with `timer` 'worker' the worker keeps the schedule and its own tick, so a tick
 * wakes one thread and the answer the main thread, where the main thread's tick, the worker and
 * the answer wake three; with `send` 'worker' the worker writes each frame into its socket's
 * descriptor itself (framed as `ws` frames it), so no answer goes back and the main thread takes
 * no part in a frame; and with `log` 'thread' every connection's records go to one log the worker
 * holds, a tick's chunks in one `write` and then its results in another, before its frames; with
 * `log` 'mapped' each connection keeps its own two files, but a record is copied into a shared
 * mapping of the file's pages (MappedLog) instead of written with a system call.
 *
 * With `send` 'worker', a slot in shared memory says which thread may write a connection's
 * socket. The worker takes it for one non-blocking write at a time, and never waits holding it.
 * The main thread takes it back for good before it writes anything to that socket itself (`ws`
 * answering a ping or a close, `stopped`) and before the descriptor can close (which the kernel may
 * then give to another socket or file). A frame the socket does not take whole (its buffer is
 * full: a slow client) leaves its rest in shared memory, which the main thread writes before
 * anything else, and every later frame of that connection goes to the main thread to send.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Socket } from 'node:net';
import koffi from 'koffi';
import { HEADER_BYTES, frameRecord } from './fs-cost.js';
import { loadConfig } from '../src/config.js';
import { waitEnd, waitGranularity } from '../src/sessions/timer-wheel.js';
import { transcriptMessage, wsTextFrame } from '../src/ws/frames.js';
import { guardSocket, type SocketHandle } from '../src/ws/socket-slots.js';

export { wsTextFrame };

/** tandem's variables for how coarse its waits between steps are: the hand-off follows them when set. */
const STEP_TIMER_VARS = ['STEP_TIMER_TICK_MS', 'STEP_TIMER_SLACK_PERCENT', 'STEP_TIMER_MAX_SLACK_MS'] as const;

/** The STEP_TIMER_* variables of `env` alone: what the hand-off takes from an environment. */
export function stepTimerEnv(env: Record<string, string | undefined>): Record<string, string> {
  return pick(env, STEP_TIMER_VARS);
}

/** The bare ws server's variables that choose a hand-off variant (bench/bare-ws-child.ts); BARE_WS_HANDOFF itself is the scenario's. */
const VARIANT_VARS = ['BARE_WS_HANDOFF_TIMER', 'BARE_WS_HANDOFF_SEND', 'BARE_WS_HANDOFF_LOG'] as const;

/** What the `steady-handoff` floor takes from the bench's --env: the STEP_TIMER_* variables and the variant's. */
export function handoffEnv(env: Record<string, string | undefined>): Record<string, string> {
  return { ...stepTimerEnv(env), ...pick(env, VARIANT_VARS) };
}

function pick(env: Record<string, string | undefined>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
}

/**
 * How coarse tandem's waits between steps are: its defaults, or the STEP_TIMER_* variables of this
 * process's environment (bench/wake-cost.ts measures a wake-up at its tick).
 */
export const STEP_TIMER = loadConfig(stepTimerEnv(process.env)).stepTimer;
/** The tick the due connections are gathered on, ms (tandem's STEP_TIMER_TICK_MS). */
const HANDOFF_TICK_MS = STEP_TIMER.tickMs;

/** Epoch ms with sub-ms precision, as tandem stamps `producedAt`. */
export const nowMs = () => performance.timeOrigin + performance.now();
/** The demo pipeline's text, made the same way on both threads from the record's time. */
export const demoText = (seq: number, producedAt: number) => `Data from producer #${seq} at ${(producedAt / 1000).toFixed(3)}`;

/** A `transcript` frame's text, made by tandem's own function (src/ws/frames.ts), the demo pipeline's text as `data`. */
export function transcriptFrame(session: string, seq: number, producedAt = nowMs()): string {
  return transcriptMessage(session, seq, JSON.stringify(demoText(seq, producedAt)), producedAt);
}

/** A connection fed through the hand-off: each frame is sent once it is on disk. */
export interface HandoffFeed {
  /** Stops the frames; returns the seq of the last one written into its socket (a socket target's; 0 for `send`, which saw each). */
  stop(): number;
}

/** Records appended per frame: none (the hop alone), the frame, or its chunk and then its result, each to its own log. */
export type HandoffAppends = 0 | 1 | 2;
/** Which thread keeps the schedule and ticks: the main thread (as tandem's timer wheel does), or the worker. */
export type HandoffTimer = 'main' | 'worker';
/** Which thread writes a frame to its socket: the main thread with the worker's answer, or the worker itself. */
export type HandoffSend = 'main' | 'worker';
/**
 * Where the records go: each connection's own files, one `write` per record (tandem's spool), or
 * one log the worker shares between every connection, one `write` for a tick's chunk records and
 * one for its result records, in that order (the "many records can share a write"); or
 * each connection's own files, each record copied into the file's pages through a shared mapping
 * (`mmap`, no system call a record: MappedLog).
 */
export type HandoffLog = 'connection' | 'thread' | 'mapped';
/**
 * Where a connection's frames go: to `send` on the main thread, or (with `send` 'worker') into
 * `socket`, made for `session`, for as long as `isOpen()` (a frame after a close frame breaks the protocol).
 */
export type HandoffTarget = { send: (seq: number, producedAt: number) => void } | { socket: Socket; session: string; isOpen: () => boolean };

/** Sockets the worker may write frames to at once, at most (`send` 'worker'): slots in shared memory. */
const SOCKET_SLOTS = 16_384;
/** A slot's Int32s: who may write (HandoffData.slots), the seq of the last frame the worker wrote whole, and the bytes of a rest left. */
const SLOT_INTS = 4;
const SLOT_LAST_SEQ = 1;
const SLOT_REST_BYTES = 2;
/** The longest frame the worker writes itself (a transcript is about 200 bytes): a rest of one fits its slot's room in HandoffData.rests. */
const REST_MAX_BYTES = 1024;

/** When a connection's frames fall due: every `intervalMs`, each on the first boundary of `granularityMs` at or after. */
interface Schedule {
  seq: number;
  /** Epoch ms (nowMs), the same on both threads. */
  dueAt: number;
  readonly intervalMs: number;
  readonly granularityMs: number;
}

/** The connections of `schedules` due at `now`, as id, seq pairs, each moved on to its next frame. */
function takeDue(schedules: Map<number, Schedule>, now: number): number[] {
  const due: number[] = [];
  for (const [id, c] of schedules) {
    if (waitEnd(c.dueAt, c.granularityMs) > now) continue;
    c.dueAt += c.intervalMs;
    due.push(id, ++c.seq);
  }
  return due;
}

/** Opens a connection on the worker: its schedule when the worker keeps it, its socket when the worker writes its frames. */
interface OpenMessage {
  open: number;
  schedule: Schedule | null;
  socket: { fd: number; slot: number; session: string } | null;
}
type ToWorker = Float64Array | OpenMessage | { close: number };
/** The worker's answer: the frames it made (id, seq, producedAt each) for the main thread to send, or (`send` 'worker') frames' bytes to write. */
type ToMain = Float64Array | { frames: Array<[id: number, seq: number, bytes: Uint8Array]> };

interface HandoffData {
  dir: string;
  appends: HandoffAppends;
  timer: HandoffTimer;
  log: HandoffLog;
  /**
   * With `send` 'worker', SLOT_INTS Int32s per socket: first the connection's id while the worker
   * may write to its descriptor, minus the id during one write, 0 once the main thread has taken
   * it back (for good); then the seq of the last frame the worker wrote (whole, or with its rest
   * left); then the bytes of that rest (0: none); the fourth is unused (alignment).
   */
  slots: SharedArrayBuffer | null;
  /** REST_MAX_BYTES per slot: the rest of a frame the socket did not take whole, for the main thread to write first. */
  rests: SharedArrayBuffer | null;
}

/** The main thread's side: one worker, one tick for every connection. */
export class Handoff {
  readonly #worker: Worker;
  readonly #timer: HandoffTimer;
  /** The open feeds: how a frame the worker answers with is sent. */
  readonly #sends = new Map<number, (seq: number, producedAt: number) => void>();
  /** With `send` 'worker': the open feeds' sockets, for the frames the worker hands back (a full socket's, or after the main thread wrote). */
  readonly #sockets = new Map<number, { socket: Socket; isOpen: () => boolean; lastSeq: number }>();
  /** The schedules, when this thread keeps them. */
  readonly #schedules = new Map<number, Schedule>();
  /** With `send` 'worker': the sockets' slots (HandoffData.slots), and those free. */
  readonly #slots: Int32Array | null;
  readonly #rests: Uint8Array | null;
  readonly #freeSlots: number[] = [];
  #nextId = 1;

  constructor(dir: string, appends: HandoffAppends, timer: HandoffTimer = 'main', send: HandoffSend = 'main', log: HandoffLog = 'connection') {
    fs.mkdirSync(dir, { recursive: true });
    this.#timer = timer;
    const slots = send === 'worker' ? new SharedArrayBuffer(4 * SLOT_INTS * SOCKET_SLOTS) : null;
    const rests = send === 'worker' ? new SharedArrayBuffer(REST_MAX_BYTES * SOCKET_SLOTS) : null;
    this.#slots = slots ? new Int32Array(slots) : null;
    this.#rests = rests ? new Uint8Array(rests) : null;
    if (slots) for (let i = SOCKET_SLOTS - 1; i >= 0; i--) this.#freeSlots.push(i * SLOT_INTS);
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { dir, appends, timer, log, slots, rests } satisfies HandoffData });
    this.#worker.on('message', (m: ToMain) => {
      if (m instanceof Float64Array) {
        for (let i = 0; i < m.length; i += 3) this.#sends.get(m[i]!)?.(m[i + 1]!, m[i + 2]!);
        return;
      }
      for (const [id, seq, bytes] of m.frames) {
        const open = this.#sockets.get(id);
        // Stopped meanwhile, or closing: nothing more goes out.
        if (!open || !open.isOpen() || open.socket.writableEnded) continue;
        // An empty entry asks for a rest the worker left (takeBack writes it first).
        open.socket.write(bytes);
        if (bytes.length > 0) open.lastSeq = seq;
      }
    });
    // After the listener, which would ref the worker's port again: the hand-off never keeps a process alive.
    this.#worker.unref();
    if (timer === 'main')
      setInterval(() => {
        const due = takeDue(this.#schedules, nowMs());
        if (due.length > 0) this.#worker.postMessage(Float64Array.from(due) satisfies ToWorker);
      }, HANDOFF_TICK_MS).unref();
  }

  /** Feeds one frame every `intervalMs` to `target`, each appended on the worker first. */
  feed(intervalMs: number, target: HandoffTarget): HandoffFeed {
    const id = this.#nextId++;
    const schedule: Schedule = { seq: 0, dueAt: nowMs() + intervalMs, intervalMs, granularityMs: waitGranularity(intervalMs, STEP_TIMER) };
    const slots = this.#slots;
    if ('send' in target) {
      if (slots) throw new Error('a hand-off whose worker sends is fed sockets, not send functions');
      this.#sends.set(id, target.send);
      if (this.#timer === 'main') this.#schedules.set(id, schedule);
      this.#worker.postMessage({ open: id, schedule: this.#timer === 'worker' ? schedule : null, socket: null } satisfies ToWorker);
      return {
        stop: () => {
          this.#schedules.delete(id);
          if (this.#sends.delete(id)) this.#worker.postMessage({ close: id } satisfies ToWorker);
          return 0;
        },
      };
    }
    const rests = this.#rests;
    if (!slots || !rests) throw new Error('a hand-off whose main thread sends is fed send functions, not sockets');
    const socket = target.socket as Socket & { _handle: SocketHandle | null };
    const handle = socket._handle;
    if (!handle) throw new Error('the hand-off was given a closed socket');
    const slot = this.#freeSlots.pop();
    if (slot === undefined) throw new Error(`the hand-off writes frames into ${SOCKET_SLOTS} sockets at most`);
    Atomics.store(slots, slot + SLOT_LAST_SEQ, 0);
    Atomics.store(slots, slot + SLOT_REST_BYTES, 0);
    // Bytes still queued on the socket (its `started`) go first: then the main thread sends them all.
    Atomics.store(slots, slot, socket.writableLength === 0 ? id : 0);
    const open = { socket, isOpen: target.isOpen, lastSeq: 0 };
    this.#sockets.set(id, open);
    const write = socket.write as (this: Socket, ...args: unknown[]) => boolean;
    /** Whether the slot is still this feed's (after stop() it may be another's). */
    let mine = true;
    /**
     * The slot back for good, once the worker's write under way (one call, never a wait) is done;
     * then the rest of a frame it left half written goes first, so frames never interleave.
     */
    const takeBack = () => {
      if (!mine) return;
      while (Atomics.compareExchange(slots, slot, id, 0) === -id);
      const restBytes = Atomics.load(slots, slot + SLOT_REST_BYTES);
      if (restBytes === 0) return;
      Atomics.store(slots, slot + SLOT_REST_BYTES, 0);
      const at = (slot / SLOT_INTS) * REST_MAX_BYTES;
      if (!socket.destroyed) write.call(socket, Buffer.from(rests.subarray(at, at + restBytes)));
    };
    const stop = () => {
      this.#schedules.delete(id);
      if (!this.#sockets.delete(id)) return open.lastSeq;
      takeBack();
      mine = false;
      open.lastSeq = Math.max(open.lastSeq, Atomics.load(slots, slot + SLOT_LAST_SEQ));
      this.#freeSlots.push(slot);
      this.#worker.postMessage({ close: id } satisfies ToWorker);
      return open.lastSeq;
    };
    // Before this thread writes to the socket itself or ends it, and before its descriptor can
    // close, the worker is off it (the same guard as tandem's: src/ws/socket-slots.ts).
    guardSocket(socket, handle, takeBack, stop);
    if (this.#timer === 'main') this.#schedules.set(id, schedule);
    this.#worker.postMessage({ open: id, schedule: this.#timer === 'worker' ? schedule : null, socket: { fd: handle.fd, slot, session: target.session } } satisfies ToWorker);
    return { stop };
  }
}

/**
 * Writes `frame` into the socket of `s` if the slot is the worker's, in one non-blocking call.
 * Returns the frame when the main thread is to send it (the slot is its, or the frame is longer
 * than a rest's room, or the socket took none of it: the slot is then the main thread's); null
 * when it was written whole; nothing (an empty buffer, for the main thread to act on at once) when
 * its rest is left in the slot's room for the main thread to write before anything else.
 */
function writeFrame(slots: Int32Array, rests: Uint8Array, id: number, s: NonNullable<OpenMessage['socket']>, seq: number, frame: Buffer): Buffer | null {
  if (Atomics.compareExchange(slots, s.slot, id, -id) !== id) return frame;
  if (frame.length > REST_MAX_BYTES) {
    Atomics.store(slots, s.slot, 0);
    return frame;
  }
  let written = 0;
  try {
    written = fs.writeSync(s.fd, frame);
  } catch {
    // EAGAIN: the socket's buffer is full; or the peer is gone, which the main thread's write will find too.
  }
  if (written === frame.length) {
    Atomics.store(slots, s.slot + SLOT_LAST_SEQ, seq);
    Atomics.store(slots, s.slot, id);
    return null;
  }
  if (written === 0) {
    Atomics.store(slots, s.slot, 0);
    return frame;
  }
  rests.set(frame.subarray(written), (s.slot / SLOT_INTS) * REST_MAX_BYTES);
  Atomics.store(slots, s.slot + SLOT_LAST_SEQ, seq); // its rest goes before anything else
  Atomics.store(slots, s.slot + SLOT_REST_BYTES, frame.length - written);
  Atomics.store(slots, s.slot, 0);
  return EMPTY; // the main thread is asked for the rest now, not at the connection's next frame
}

const EMPTY = Buffer.alloc(0);

/**
 * The bytes of a file a MappedLog reserves and maps at a time: blocks are allocated for them first
 * (`fallocate`), so a store into the mapping never needs a block the disk no longer has (that
 * would kill the process with SIGBUS, where `write` returns ENOSPC). A multiple of the page size.
 */
export const MAP_WINDOW_BYTES = 64 * 1024;

/** libc's calls a MappedLog makes (koffi), loaded once per thread on first use. */
interface Libc {
  mmap: koffi.KoffiFunction;
  munmap: koffi.KoffiFunction;
  fallocate: koffi.KoffiFunction;
}
let loaded: Libc | null = null;
function libc(): Libc {
  if (loaded) return loaded;
  const lib = koffi.load('libc.so.6');
  return (loaded = {
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    fallocate: lib.func('int fallocate(int fd, int mode, int64_t off, int64_t len)'),
  });
}
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;

/**
 * A file appended to through a shared mapping of its pages: a record is copied into the page
 * cache with no system call, as durable as a `write` without fsync (the pages survive the process
 * being killed, not the machine losing power). The file is reserved and mapped MAP_WINDOW_BYTES at
 * a time; a record that crosses a window's end is split across two; close() cuts the file to what
 * was appended. Readers read it with `read`, as the same page cache.
 */
export class MappedLog implements RecordSink {
  readonly #fd: number;
  #window: Uint8Array | null = null;
  #pointer: unknown = null;
  /** The file offset the window maps, and the bytes appended in all. */
  #base = 0;
  #length = 0;

  constructor(file: string) {
    // Read and write: a shared mapping for writing needs both (one opened to append is refused).
    this.#fd = fs.openSync(file, 'w+');
    try {
      this.#map(0);
    } catch (err) {
      fs.closeSync(this.#fd);
      throw err;
    }
  }

  append(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      if (this.#length - this.#base === MAP_WINDOW_BYTES) this.#map(this.#base + MAP_WINDOW_BYTES);
      const n = Math.min(bytes.length - from, MAP_WINDOW_BYTES - (this.#length - this.#base));
      this.#window!.set(bytes.subarray(from, from + n), this.#length - this.#base);
      from += n;
      this.#length += n;
    }
  }

  close(): void {
    this.#unmap();
    fs.ftruncateSync(this.#fd, this.#length);
    fs.closeSync(this.#fd);
  }

  #map(base: number): void {
    const c = libc();
    this.#unmap();
    if (c.fallocate(this.#fd, 0, base, MAP_WINDOW_BYTES) !== 0) throw new Error(`fallocate of ${MAP_WINDOW_BYTES} bytes at ${base} failed (errno ${koffi.errno()})`);
    const p = c.mmap(null, MAP_WINDOW_BYTES, PROT_READ_WRITE, MAP_SHARED, this.#fd, base);
    if (koffi.address(p) === BigInt.asUintN(64, -1n)) throw new Error(`mmap of ${MAP_WINDOW_BYTES} bytes at ${base} failed (errno ${koffi.errno()})`);
    this.#pointer = p;
    this.#window = new Uint8Array(koffi.view(p, MAP_WINDOW_BYTES));
    this.#base = base;
  }

  #unmap(): void {
    if (!this.#pointer) return;
    // The view goes first: no store may reach the pages once they are unmapped.
    this.#window = null;
    libc().munmap(this.#pointer, MAP_WINDOW_BYTES);
    this.#pointer = null;
  }
}

/** Where a connection's records go: one of its own files, appended to with `write` (tandem's spool) or through a mapping (MappedLog). */
interface RecordSink {
  append(bytes: Uint8Array): void;
  close(): void;
}

/** A file held open for appending, a `write` per record. */
class AppendedFile implements RecordSink {
  readonly #fd: number;

  constructor(file: string) {
    this.#fd = fs.openSync(file, 'a');
  }

  append(bytes: Uint8Array): void {
    fs.writeSync(this.#fd, bytes);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

/** The worker's side: held files per connection (or one for all), its records appended per frame (or per tick); the schedules too with its own timer. */
function serveWorker({ dir, appends, timer, log, slots: slotsBuffer, rests: restsBuffer }: HandoffData): void {
  /** Each connection's own files (none with `log` 'thread', or `appends` 0): its chunks', then its results'. */
  const files = new Map<number, RecordSink[]>();
  const sockets = new Map<number, NonNullable<OpenMessage['socket']>>();
  const slots = slotsBuffer ? new Int32Array(slotsBuffer) : null;
  const rests = restsBuffer ? new Uint8Array(restsBuffer) : null;
  const schedules = new Map<number, Schedule>();
  let buf = Buffer.allocUnsafe(HEADER_BYTES + 256);
  const logs = appends === 2 ? ['chunks', 'results'] : appends === 1 ? ['log'] : [];
  /** With `log` 'thread', the one log every connection's records go to (appends 1 or 2: its frames' records, in one or two writes a tick). */
  const shared = log === 'thread' && appends > 0 ? fs.openSync(path.join(dir, 'thread.log'), 'a') : null;
  /**
   * Appends the records of a tick's frames to the shared log, every chunk in one write, then
   * (appends 2) every result in another; returns each frame's time, taken before any is written.
   */
  const appendShared = (fd: number, due: ArrayLike<number>): Float64Array => {
    const frames = due.length / 2;
    const times = new Float64Array(frames);
    const texts = new Array<string>(frames);
    for (let k = 0; k < frames; k++) texts[k] = demoText(due[2 * k + 1]!, (times[k] = nowMs()));
    if (buf.length < frames * (HEADER_BYTES + 256)) buf = Buffer.allocUnsafe(frames * 2 * (HEADER_BYTES + 256));
    for (let pass = 0; pass < appends; pass++) {
      let at = 0;
      for (let k = 0; k < frames; k++) at += frameRecord(buf, at, due[2 * k + 1]!, pass === 0 ? texts[k]! : JSON.stringify(texts[k]));
      fs.writeSync(fd, buf, 0, at);
    }
    return times;
  };
  /** Appends the frames of id, seq pairs and sends them, or tells the main thread their times to send them. */
  const make = (due: ArrayLike<number>) => {
    const done = slots ? null : new Float64Array((due.length / 2) * 3);
    let handedBack: Array<[number, number, Uint8Array]> | null = null;
    // A shared log's records are written before any frame: a tick's chunks are on disk before its results, and both before its frames.
    const times = shared !== null ? appendShared(shared, due) : null;
    for (let i = 0, j = 0; i < due.length; i += 2, j += 3) {
      const id = due[i]!;
      const seq = due[i + 1]!;
      const producedAt = times ? times[i / 2]! : nowMs();
      const [chunks, results] = files.get(id)!;
      // The chunk as the demo producer writes it, then (with two logs) the result as tandem logs it: its JSON.
      if (chunks !== undefined) {
        const text = demoText(seq, producedAt);
        chunks.append(buf.subarray(0, frameRecord(buf, 0, seq, text)));
        results?.append(buf.subarray(0, frameRecord(buf, 0, seq, JSON.stringify(text))));
      }
      if (done) {
        done[j] = id;
        done[j + 1] = seq;
        done[j + 2] = producedAt;
        continue;
      }
      const socket = sockets.get(id);
      if (!socket) continue;
      const frame = writeFrame(slots!, rests!, id, socket, seq, wsTextFrame(transcriptFrame(socket.session, seq, producedAt)));
      if (frame) (handedBack ??= []).push([id, seq, frame]);
    }
    if (done) parentPort!.postMessage(done satisfies ToMain);
    else if (handedBack) parentPort!.postMessage({ frames: handedBack } satisfies ToMain);
  };
  if (timer === 'worker')
    setInterval(() => {
      const due = takeDue(schedules, nowMs());
      if (due.length > 0) make(due);
    }, HANDOFF_TICK_MS);
  parentPort!.on('message', (m: ToWorker) => {
    if (m instanceof Float64Array) return make(m);
    if ('open' in m) {
      const File = log === 'mapped' ? MappedLog : AppendedFile;
      files.set(m.open, shared !== null ? [] : logs.map((name) => new File(path.join(dir, `${m.open}.${name}`))));
      if (m.schedule) schedules.set(m.open, m.schedule);
      if (m.socket) sockets.set(m.open, m.socket);
      return;
    }
    schedules.delete(m.close);
    sockets.delete(m.close);
    for (const f of files.get(m.close) ?? []) f.close();
    files.delete(m.close);
  });
}

if (!isMainThread && (workerData as Partial<HandoffData> | null)?.dir) serveWorker(workerData as HandoffData);
