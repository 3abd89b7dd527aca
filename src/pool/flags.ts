/**
 * The per-session shared memory that both the main thread and pool threads see.
 * It carries the cooperative stop (a flag any blocking wait in a loop wakes on) and the
 * live facts inspect reports without a message round trip.
 */
export const FLAG = {
  /** 1 once a stop was requested. */
  STOP: 0,
  /** Highest chunk seq that is complete on disk. */
  COMMITTED: 1,
  /** 1 once the producer will write nothing more. */
  PRODUCER_DONE: 2,
  /** threadId of the worker running the producer right now (0 = none). */
  PRODUCER_THREAD: 3,
  /** threadId of the worker running the consumer right now (0 = none). */
  CONSUMER_THREAD: 4,
  /** 1 while the spool is at its quota: a loop producer's write() blocks until it is 0. */
  PAUSE_PRODUCER: 5,
  /** 1 while the client cannot take results: a loop consumer's next() blocks until it is 0. */
  PAUSE_CONSUMER: 6,
  /** Seq of the last chunk the consumer is done with. */
  CONSUMED: 7,
  // The spool's logs (spool/log.ts): each has one writer at a time, so plain stores suffice.
  /** First seq of the chunk segment the producer appends to (0 = none yet), and its size in bytes. */
  CHUNK_SEGMENT: 8,
  CHUNK_SEGMENT_BYTES: 9,
  /** Where the consumer reads: the segment of chunk CONSUMED + 1 and that record's byte offset. */
  READ_SEGMENT: 10,
  READ_OFFSET: 11,
  /** First seq of the results segment being appended to (0 = none yet), and its size in bytes. */
  RESULT_SEGMENT: 12,
  RESULT_SEGMENT_BYTES: 13,
  /** Oldest result seq still in the results log: RESUME reaches back to here. */
  RESULT_WINDOW_FROM: 14,
  /**
   * 1 after a step of this session was rolled back (its thread died in a batch it shared): the
   * next writer of that log first cuts what was written past the published end.
   */
  CHUNKS_DIRTY: 15,
  RESULTS_DIRTY: 16,
  /**
   * A file descriptor the main thread holds open on a log's open segment, and that segment's
   * first seq (0 = none): steps append through it instead of opening the file each time
   * (spool/log-files.ts).
   */
  CHUNKS_FD: 17,
  CHUNKS_FD_SEGMENT: 18,
  RESULTS_FD: 19,
  RESULTS_FD_SEGMENT: 20,
  /**
   * An event count: bumped and notified on every change a blocking wait of a loop watches (a
   * commit, the producer done, a chunk consumed, a pause set or cleared, a stop). A wait reads it
   * before it checks its condition and sleeps only while it is unchanged, so a change that lands
   * between the check and the sleep wakes it at once instead of being missed (a stop was missed so,
   * leaving a loop consumer in chunkReady() until its timeout).
   */
  WAKE: 21,
  /**
   * A resident producer's ownership token (pool/residents.ts): the token while the step thread
   * holds the session between steps, its negative while that thread runs one of its steps, 0 when
   * no thread holds it. Whoever swaps it away from the token first owns the session: the thread to
   * run a step or hand it back, the main thread to take it back without the thread's help.
   */
  RESIDENT: 22,
  /**
   * The socket a step thread may write this session's results into (ws/socket-slots.ts): its slot
   * + 1 and the slot's id while the session's client is attached and STEP_SENDS is on (0: none;
   * the main thread sends them).
   */
  SEND_SLOT: 23,
  SEND_ID: 24,
  /** A sequence lock over a resident's quiet steps' numbers (pool/quiet-steps.ts): odd while its step thread writes them. */
  QUIET_VERSION: 25,
  /** The step number of the last resident answer the main thread took in: its next step waits for it (pool/quiet-steps.ts). */
  RESIDENT_ACK: 26,
  /** The last result seq the main thread delivered (sent, or counted as sent by a step thread): a quiet step must follow it or a quiet one. */
  DELIVERED: 27,
  /** Slow runs of the step consumer in a row, -1 once judged slow (sessions/pacing.ts noteConsumerRun): lent only while not -1. */
  CONSUMER_SLOW_RUNS: 28,
} as const;

const INT_SLOTS = 30; // even, so the float slots after them are 8-byte aligned (one spare)

/**
 * Float slots of a resident's quiet steps (pool/quiet-steps.ts owns what they mean): the step
 * number of the last one, the producer's next seq, when the next step is due, the totals since the
 * residency began, samples written and taken, the states' length.
 */
export const QUIET = {
  STEP: 5,
  NEXT_SEQ: 6,
  DUE_AT: 7,
  CHUNKS: 8,
  BYTES: 9,
  RESULTS: 10,
  CALLS: 11,
  SAMPLES: 12,
  STATE_LENGTH: 13,
  SAMPLES_TAKEN: 14,
  STEPS: 15,
} as const;

const FLOAT_SLOTS = 16;

/** Float slots: epoch ms at which the call of the side's step now running began, or its loop (0: none runs). */
const STARTED_AT = { producer: 0, consumer: 1 } as const;
/** Float slots of the logs: when the open results segment began, and each log's last fsync (epoch ms). */
export const LOG_TIME = { resultSegmentOpenedAt: 2, chunksSyncedAt: 3, resultsSyncedAt: 4 } as const;

export interface SessionFlags {
  readonly ints: Int32Array;
  readonly floats: Float64Array;
}

/** The int slot naming the thread that runs a side's code now. */
const THREAD_SLOT = { producer: FLAG.PRODUCER_THREAD, consumer: FLAG.CONSUMER_THREAD } as const;

/** The thread running `side`'s code now, as that thread wrote it (0: none). */
export function runningThread(flags: SessionFlags, side: 'producer' | 'consumer'): number {
  return Atomics.load(flags.ints, THREAD_SLOT[side]);
}

/**
 * Called by a pool thread as it begins (`threadId`) or ends (0) running `side`'s code: which thread
 * runs it. When the pipeline's own code began is markStepBegan's to say: none has yet.
 */
export function markRunning(flags: SessionFlags, side: 'producer' | 'consumer', threadId: number): void {
  Atomics.store(flags.ints, THREAD_SLOT[side], threadId);
  flags.floats[STARTED_AT[side]] = 0;
}

/**
 * Called by a pool thread, inside markRunning's span, just before each call of `side`'s step (a
 * loop: before its one call of `run`), and markStepEnded as soon as the call returns:
 * STEP_TIMEOUT_MS times the pipeline's own code, call by call, so a task that makes many quick
 * calls is never taken for one long one, and the service's own work around them (reading a
 * chunk, the append after the last) is never counted. Returns the time it wrote (epoch ms).
 */
export function markStepBegan(flags: SessionFlags, side: 'producer' | 'consumer'): number {
  const at = nowMs();
  flags.floats[STARTED_AT[side]] = at;
  return at;
}

export function markStepEnded(flags: SessionFlags, side: 'producer' | 'consumer'): void {
  flags.floats[STARTED_AT[side]] = 0;
}

/** When the call of `side`'s step now running began, or its loop (epoch ms; 0: none runs). */
export function stepStartedAt(flags: SessionFlags, side: 'producer' | 'consumer'): number {
  return flags.floats[STARTED_AT[side]]!;
}

/** Bytes of one session's flags: its ints, then its floats (8-byte aligned). */
const SLOT_BYTES = INT_SLOTS * 4 + FLOAT_SLOTS * 8;

/** The views of slot `slot` of a flags slab. */
export function flagsAt(slab: SharedArrayBuffer, slot: number): SessionFlags {
  const at = slot * SLOT_BYTES;
  return { ints: new Int32Array(slab, at, INT_SLOTS), floats: new Float64Array(slab, at + INT_SLOTS * 4, FLOAT_SLOTS) };
}

/**
 * Every session's flags in one SharedArrayBuffer, a slot each. The pool threads get the buffer
 * once, when they start, and a task names its session's slot: a SharedArrayBuffer sent with every
 * task cost more to pass and to collect than the whole step of a quick pipeline.
 */
export class FlagsSlab {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly #free: number[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
    this.buffer = new SharedArrayBuffer(capacity * SLOT_BYTES);
    for (let slot = capacity - 1; slot >= 0; slot--) this.#free.push(slot);
  }

  /** A zeroed slot for a new session, or null when every slot is taken. */
  alloc(): { slot: number; flags: SessionFlags } | null {
    const slot = this.#free.pop();
    return slot === undefined ? null : { slot, flags: flagsAt(this.buffer, slot) };
  }

  /** Gives a slot back once nothing of its session can touch it any more (zeroed for the next). */
  free(slot: number): void {
    new Uint8Array(this.buffer, slot * SLOT_BYTES, SLOT_BYTES).fill(0);
    this.#free.push(slot);
  }
}

/** A step thread begins a resident's step: true if the session is still its own (see FLAG.RESIDENT). */
export function claimResident(flags: SessionFlags, token: number): boolean {
  return Atomics.compareExchange(flags.ints, FLAG.RESIDENT, token, -token) === token;
}

/** The resident's step ended on its thread: the session waits between steps again. */
export function unclaimResident(flags: SessionFlags, token: number): void {
  Atomics.compareExchange(flags.ints, FLAG.RESIDENT, -token, token);
}

/**
 * Ends a residency while no step of it runs: true for the one caller (the thread handing the
 * session back, or the main thread taking it back) that wins it; false while a step runs or once
 * the other side won.
 */
export function endResidency(flags: SessionFlags, token: number): boolean {
  return Atomics.compareExchange(flags.ints, FLAG.RESIDENT, token, 0) === token;
}

/** True while a step thread runs a step of the resident holding `token`. */
export function residentRunning(flags: SessionFlags, token: number): boolean {
  return Atomics.load(flags.ints, FLAG.RESIDENT) === -token;
}

export function isStopRequested(flags: SessionFlags): boolean {
  return Atomics.load(flags.ints, FLAG.STOP) === 1;
}

/** Wakes every wait of the session's loops to look at the flags again (FLAG.WAKE). */
export function wake(flags: SessionFlags): void {
  Atomics.add(flags.ints, FLAG.WAKE, 1);
  Atomics.notify(flags.ints, FLAG.WAKE);
}

/**
 * Blocks a pool thread until `ready()` is true, stop or not (it checks the stop itself), or until
 * `deadline` (epoch ms) passes; false on the deadline. Never misses a change: see FLAG.WAKE.
 */
export function waitUntil(flags: SessionFlags, ready: () => boolean, deadline = Infinity): boolean {
  const ints = flags.ints;
  for (;;) {
    const seen = Atomics.load(ints, FLAG.WAKE);
    if (ready()) return true;
    const left = deadline - nowMs();
    if (left <= 0) return false;
    Atomics.wait(ints, FLAG.WAKE, seen, left === Infinity ? undefined : left);
  }
}

/** Sets the stop flag and wakes every wait at once (sleeps wait on the flag itself). */
export function requestStop(flags: SessionFlags): void {
  Atomics.store(flags.ints, FLAG.STOP, 1);
  Atomics.notify(flags.ints, FLAG.STOP);
  wake(flags);
}

/** Sets or clears a pause slot, waking the loops' waits when it changes. */
export function setPaused(flags: SessionFlags, slot: typeof FLAG.PAUSE_PRODUCER | typeof FLAG.PAUSE_CONSUMER, paused: boolean): void {
  const value = paused ? 1 : 0;
  if (Atomics.exchange(flags.ints, slot, value) !== value) wake(flags);
}

/** Blocks while `slot` is set and no stop was requested (a pool thread only). */
export function waitWhilePaused(flags: SessionFlags, slot: typeof FLAG.PAUSE_PRODUCER | typeof FLAG.PAUSE_CONSUMER): void {
  waitUntil(flags, () => Atomics.load(flags.ints, slot) !== 1 || isStopRequested(flags));
}

/**
 * Blocks a loop producer while the spool holds `quotaChunks` chunks the consumer has not taken
 * (exact: both counts live in shared memory), or while the main thread paused it (the byte quota).
 */
export function waitForSpoolRoom(flags: SessionFlags, nextSeq: number, quotaChunks: number): void {
  const ints = flags.ints;
  waitUntil(
    flags,
    () => isStopRequested(flags) || (Atomics.load(ints, FLAG.PAUSE_PRODUCER) !== 1 && nextSeq - 1 - Atomics.load(ints, FLAG.CONSUMED) < quotaChunks),
  );
}

/** This thread's `performance.timeOrigin`, read once: the getter made a number object on every call. */
const TIME_ORIGIN = performance.timeOrigin;

/** Epoch milliseconds with sub-millisecond precision, comparable across threads. */
export function nowMs(): number {
  return TIME_ORIGIN + performance.now();
}
