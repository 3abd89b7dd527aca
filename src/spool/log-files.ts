/**
 * The files a session's steps append through. Opening a segment for every step cost more than the
 * write itself, and a descriptor a pool thread opens is closed when that thread ends, so the main
 * thread holds the open segment of each log that step tasks append to (a loop or a client producer
 * keeps its own appender open instead) for the session's life and names the descriptor in
 * the session's flags (CHUNKS_FD / RESULTS_FD, with the segment it belongs to). An appender uses
 * it when it writes to that segment and opens the file itself otherwise (a loop, or a step that
 * just began a new segment); when a step's new segment is published, the main thread opens it and
 * closes the one before. A descriptor is closed only when no step of its log is on its way.
 * Held descriptors come out of one budget for the service (spool/held-files.ts): a session that
 * finds it spent holds none, and one whose descriptors a new socket needs gives them back; its
 * steps then open their files themselves, so sockets never run short of descriptors.
 */
import fs from 'node:fs';
import { FLAG, LOG_TIME, nowMs, type SessionFlags } from '../pool/flags.js';
import { segmentPath, type LogKind } from './log.js';
import type { FileHolder, HeldFilesBudget } from './held-files.js';

const SLOTS = {
  chunks: { fd: FLAG.CHUNKS_FD, segment: FLAG.CHUNKS_FD_SEGMENT },
  results: { fd: FLAG.RESULTS_FD, segment: FLAG.RESULTS_FD_SEGMENT },
} as const;

/** The descriptor the main thread holds on `kind`'s segment `segment`, or null. */
export function heldFd(flags: SessionFlags, kind: LogKind, segment: number): number | null {
  const slots = SLOTS[kind];
  const ints = flags.ints;
  if (segment === 0 || Atomics.load(ints, slots.segment) !== segment) return null;
  // The segment is stored after its fd and cleared before it: still the same once the fd is read,
  // the fd is its (not a 0 or a successor read halfway through a change).
  const fd = Atomics.load(ints, slots.fd);
  return Atomics.load(ints, slots.segment) === segment ? fd : null;
}

/** What a session's log files ask of its steps before closing a held descriptor. */
export interface StepsGate {
  /** True while none of the session's steps is on its way (nothing writes through a held descriptor). */
  idle(): boolean;
  /** The descriptors are wanted back: let the steps pause soon (a resident leaves its thread). */
  pause(): void;
}

export class LogFiles implements FileHolder {
  readonly #dir: string;
  readonly #flags: SessionFlags;
  readonly #budget: HeldFilesBudget;
  /** The logs whose steps append through a held descriptor (none once the budget was spent). */
  #held: LogKind[] = [];
  readonly #wanted: LogKind[];
  readonly #steps: StepsGate;
  #closed = false;
  /** The session ended; its descriptors are closed later (retire): it takes none again. */
  #retired = false;

  /**
   * @param stepLogs the logs step tasks append to. A loop side and a client producer keep their own
   * appender open for the session's life, and their segments roll over without the main thread
   * hearing of it: a descriptor held on their log would pin a segment long removed.
   * @param steps whether the session's steps are idle, and how to make them pause.
   */
  constructor(dir: string, flags: SessionFlags, budget: HeldFilesBudget, stepLogs: readonly LogKind[], steps: StepsGate) {
    this.#dir = dir;
    this.#flags = flags;
    this.#budget = budget;
    this.#wanted = [...stepLogs];
    this.#steps = steps;
  }

  /**
   * Creates both logs' first segments (named 1: a session's first chunk is seq 1), publishes them
   * as each log's (empty) end, and holds those of the step logs open.
   */
  async open(): Promise<void> {
    const ints = this.#flags.ints;
    // A session stopped while its folder was being created retired or closed these files before
    // they opened: it holds none (a descriptor taken now would only hold room live sessions want).
    if (!this.#closed && !this.#retired && this.#wanted.length > 0) {
      if (this.#budget.take(this.#wanted.length, this)) this.#held = this.#wanted;
      else this.#budget.want(this);
    }
    for (const k of this.#held) this.#hold(k, 1);
    await Promise.all((['chunks', 'results'] as const).filter((k) => !this.#held.includes(k)).map((k) => fs.promises.writeFile(segmentPath(this.#dir, k, 1), '')));
    ints[FLAG.CHUNK_SEGMENT] = 1;
    ints[FLAG.RESULT_SEGMENT] = 1;
    ints[FLAG.RESULT_WINDOW_FROM] = 1;
    this.#flags.floats[LOG_TIME.resultSegmentOpenedAt] = nowMs();
  }

  /** Whether it holds a descriptor for each log its steps append to (none: no step log, or given back). */
  get holdsAll(): boolean {
    return this.#wanted.length > 0 && this.#held.length === this.#wanted.length;
  }

  /** A step began `kind`'s segment `segment` and it was published: hold that one instead. */
  follow(kind: LogKind, segment: number): void {
    if (this.#closed || !this.#held.includes(kind) || Atomics.load(this.#flags.ints, SLOTS[kind].segment) === segment) return;
    try {
      this.#hold(kind, segment);
    } catch {
      // The segment cannot be opened: steps open the file themselves.
    }
  }

  /**
   * The session has ended and its descriptors are to be closed later (with its folder's removal):
   * from now on it takes none again; while it holds some, a socket that needs the room may still
   * have them closed (giveBack). Safe to call twice.
   */
  retire(): void {
    if (this.#closed || this.#retired) return;
    this.#retired = true;
    // Holding some, it stays among the holders a new socket may ask to give theirs back.
    if (this.#held.length === 0) this.#budget.leave(this);
  }

  /** Closes both descriptors (the session's steps are all done). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#budget.leave(this);
    // What it held is room for sessions that hold nothing.
    if (this.#releaseAll() > 0) this.#budget.offerRoom();
  }

  /**
   * Closes both descriptors once `safe` resolves: a terminated thread of the session may not have
   * exited yet, and could still write through them (a descriptor closed now could be reused by
   * another file). They leave the session's flags now, which may go to another session meanwhile.
   */
  closeWhen(safe: Promise<void>): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#budget.leave(this);
    const n = this.#held.length;
    const fds = this.#held.map((kind) => this.#unhold(kind)).filter((fd): fd is number => fd !== null);
    this.#held = [];
    if (n === 0) return;
    void safe.then(() => {
      for (const fd of fds) closeQuietly(fd);
      this.#budget.give(n, this);
      this.#budget.offerRoom();
    });
  }

  /**
   * A socket needs the room: closes the held descriptors if no step is on its way (one that is
   * may be writing through them), and the session's steps open their files themselves from now on.
   */
  giveBack(): number {
    if (this.#closed || this.#held.length === 0 || !this.#steps.idle()) return 0;
    const n = this.#releaseAll();
    if (this.#retired) this.#budget.leave(this);
    else this.#budget.want(this);
    return n;
  }

  /** Steps are on their way and the descriptors are wanted: they pause soon (giveBack is tried again). */
  askBack(): number {
    if (this.#closed || this.#held.length === 0) return 0;
    this.#steps.pause();
    return this.#held.length;
  }

  /**
   * Room came back: holds its step logs' current segments again, if they fit. Safe while a step is
   * on its way: it writes through the file it opened itself, or through this descriptor once it is
   * published (as when a new segment is followed).
   */
  retake(): number {
    const n = this.#wanted.length;
    if (this.#closed || this.#retired || this.#held.length > 0 || !this.#budget.take(n, this)) return 0;
    const ints = this.#flags.ints;
    // Every descriptor is opened before any is published: a step on its way may write through one
    // as soon as it is, so none may be closed again when a later one fails to open.
    const opened: Array<{ kind: LogKind; segment: number; fd: number }> = [];
    try {
      for (const kind of this.#wanted) {
        const segment = Atomics.load(ints, kind === 'chunks' ? FLAG.CHUNK_SEGMENT : FLAG.RESULT_SEGMENT);
        opened.push({ kind, segment, fd: openSegment(this.#dir, kind, segment) });
      }
    } catch {
      // A segment cannot be opened: its steps go on opening their own files.
      for (const o of opened) closeQuietly(o.fd);
      this.#budget.give(n, this);
      return 0;
    }
    for (const o of opened) this.#publish(o.kind, o.segment, o.fd);
    this.#held = this.#wanted;
    return n;
  }

  #releaseAll(): number {
    const n = this.#held.length;
    for (const kind of this.#held) this.#release(kind);
    this.#held = [];
    if (n > 0) this.#budget.give(n, this);
    return n;
  }

  /**
   * Synchronous, like the close: an open still under way when the session ended (its callback not
   * yet run) held a descriptor on a segment after the folder was removed. A segment rolls over
   * rarely (a log's size or a resume window's quarter), and the open costs ~10 µs.
   */
  #hold(kind: LogKind, segment: number): void {
    this.#publish(kind, segment, openSegment(this.#dir, kind, segment));
  }

  /** Names `fd` as `kind`'s descriptor on `segment`, closing the one it held before. */
  #publish(kind: LogKind, segment: number, fd: number): void {
    this.#release(kind);
    const slots = SLOTS[kind];
    Atomics.store(this.#flags.ints, slots.fd, fd);
    Atomics.store(this.#flags.ints, slots.segment, segment);
  }

  /** Clears `kind`'s descriptor from the flags; returns it (null when none was held). */
  #unhold(kind: LogKind): number | null {
    const slots = SLOTS[kind];
    const ints = this.#flags.ints;
    if (Atomics.load(ints, slots.segment) === 0) return null;
    const fd = Atomics.load(ints, slots.fd);
    Atomics.store(ints, slots.segment, 0);
    Atomics.store(ints, slots.fd, 0);
    return fd;
  }

  #release(kind: LogKind): void {
    const fd = this.#unhold(kind);
    if (fd !== null) closeQuietly(fd);
  }
}

/** Opens `kind`'s segment `segment` for appending. */
function openSegment(dir: string, kind: LogKind, segment: number): number {
  return fs.openSync(segmentPath(dir, kind, segment), 'a');
}

/**
 * Synchronous: closing a regular file does not wait on the disk, and a callback per descriptor
 * cost a storm of STOPs more of the main thread than the close itself.
 */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // An error closing a descriptor only written through (EIO) leaves nothing to undo here.
  }
}
