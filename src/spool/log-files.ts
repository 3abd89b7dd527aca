/**
 * The files a session's steps append through. Opening a segment for every step cost more than the
 * write itself, and a descriptor a pool thread opens is closed when that thread ends, so the main
 * thread holds each log's open segment open for the session's life and names the descriptor in
 * the session's flags (CHUNKS_FD / RESULTS_FD, with the segment it belongs to). An appender uses
 * it when it writes to that segment and opens the file itself otherwise (a loop, or a step that
 * just began a new segment); when a step's new segment is published, the main thread opens it and
 * closes the one before. A descriptor is closed only when no step of its log is on its way.
 * Held descriptors come out of one budget for the service (SPOOL_HELD_FILES_MAX): a session
 * that finds it spent holds none, and its steps open their files themselves, so sockets never
 * run short of descriptors.
 */
import fs from 'node:fs';
import { FLAG, LOG_TIME, nowMs, type SessionFlags } from '../pool/flags.js';
import { segmentPath, type LogKind } from './log.js';

const SLOTS = {
  chunks: { fd: FLAG.CHUNKS_FD, segment: FLAG.CHUNKS_FD_SEGMENT },
  results: { fd: FLAG.RESULTS_FD, segment: FLAG.RESULTS_FD_SEGMENT },
} as const;

/** The descriptor the main thread holds on `kind`'s segment `segment`, or null. */
export function heldFd(flags: SessionFlags, kind: LogKind, segment: number): number | null {
  const slots = SLOTS[kind];
  // The segment is stored after its fd (and cleared before it): a match means the fd is its.
  return segment !== 0 && Atomics.load(flags.ints, slots.segment) === segment ? Atomics.load(flags.ints, slots.fd) : null;
}

/** The descriptors the service may hold for all sessions' logs together. */
export class HeldFilesBudget {
  #left: number;

  constructor(max: number) {
    this.#left = max;
  }

  take(n: number): boolean {
    if (this.#left < n) return false;
    this.#left -= n;
    return true;
  }

  give(n: number): void {
    this.#left += n;
  }
}

/** Descriptors a session holds: one per log. */
const PER_SESSION = 2;

export class LogFiles {
  readonly #dir: string;
  readonly #flags: SessionFlags;
  readonly #budget: HeldFilesBudget;
  #holding = false;
  #closed = false;

  constructor(dir: string, flags: SessionFlags, budget: HeldFilesBudget) {
    this.#dir = dir;
    this.#flags = flags;
    this.#budget = budget;
  }

  /**
   * Creates both logs' first segments (named 1: a session's first chunk is seq 1), publishes them
   * as each log's (empty) end, and holds them open.
   */
  async open(): Promise<void> {
    const ints = this.#flags.ints;
    this.#holding = this.#budget.take(PER_SESSION);
    if (this.#holding) await Promise.all([this.#hold('chunks', 1), this.#hold('results', 1)]);
    else await Promise.all(['chunks', 'results'].map((k) => fs.promises.writeFile(segmentPath(this.#dir, k as LogKind, 1), '')));
    ints[FLAG.CHUNK_SEGMENT] = 1;
    ints[FLAG.RESULT_SEGMENT] = 1;
    ints[FLAG.RESULT_WINDOW_FROM] = 1;
    this.#flags.floats[LOG_TIME.resultSegmentOpenedAt] = nowMs();
  }

  /** A step began `kind`'s segment `segment` and it was published: hold that one instead. */
  follow(kind: LogKind, segment: number): void {
    if (this.#closed || !this.#holding || Atomics.load(this.#flags.ints, SLOTS[kind].segment) === segment) return;
    void this.#hold(kind, segment).catch(() => {
      // The session ended and its folder went meanwhile: steps open the file themselves.
    });
  }

  /** Closes both descriptors (the session's steps are all done). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const kind of ['chunks', 'results'] as const) this.#release(kind);
    if (this.#holding) this.#budget.give(PER_SESSION);
  }

  async #hold(kind: LogKind, segment: number): Promise<void> {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(segmentPath(this.#dir, kind, segment), 'a', (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    if (this.#closed) return fs.close(fd, () => {});
    this.#release(kind);
    const slots = SLOTS[kind];
    Atomics.store(this.#flags.ints, slots.fd, fd);
    Atomics.store(this.#flags.ints, slots.segment, segment);
  }

  #release(kind: LogKind): void {
    const slots = SLOTS[kind];
    const ints = this.#flags.ints;
    if (Atomics.load(ints, slots.segment) === 0) return;
    const fd = Atomics.load(ints, slots.fd);
    Atomics.store(ints, slots.segment, 0);
    Atomics.store(ints, slots.fd, 0);
    // Synchronous: closing a regular file does not wait on the disk, and a callback per descriptor
    // cost a storm of STOPs more of the main thread than the close itself.
    try {
      fs.closeSync(fd);
    } catch {
      // An error closing a descriptor only written through (EIO) leaves nothing to undo here.
    }
  }
}
