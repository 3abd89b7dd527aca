/**
 * When the step threads' watchdogs look (pool/residents.ts, pool/step-batcher.ts, and
 * pool/step-channels.ts for when a thread counts as held), and as of what moment they judge. A
 * thread's answer is a message, read in the event loop's poll phase. A timer runs before that
 * phase, so a check made in a timer after a long turn of the main thread found the answers posted
 * during the turn unread, and took back work that had answered. An immediate,
 * which runs after the phase, is not enough either: when the long turn is itself a callback of the
 * poll phase (a client's frames), the answers posted during it may wait for the next poll phase,
 * and the immediate runs first.
 *
 * So a check notes a moment, `asOf`, in an immediate, and runs in the next turn's immediates: that
 * turn's poll phase read every answer posted before `asOf`. The check judges each thread as it
 * stood at `asOf` (overdue then, or not), so an answer still unread, posted after `asOf`, never
 * makes work that answered in time look overdue, however long the turns around it. It costs one
 * turn, never more: a busy main thread delays a check by no more than its own turns.
 */
import { nowMs } from './flags.js';

/** Runs `check(asOf)` one turn after noting `asOf`, once every answer posted before it was read. */
export function afterAnswersRead(check: (asOf: number) => void): void {
  setImmediate(() => {
    const asOf = nowMs();
    setImmediate(() => check(asOf));
  });
}

/**
 * A watchdog's timer: while armed, `check(asOf)` runs every `periodMs` (STEP_BATCH_STALL_MS), each
 * time through afterAnswersRead. One check at a time: the next period counts from its end.
 */
export class Watchdog {
  readonly #periodMs: number;
  readonly #check: (asOf: number) => void;
  #timer: NodeJS.Timeout | null = null;
  #armed = false;
  #closed = false;

  constructor(periodMs: number, check: (asOf: number) => void) {
    this.#periodMs = periodMs;
    this.#check = check;
  }

  /** Looks every period from now on (a no-op while armed, or once closed). */
  arm(): void {
    if (this.#armed || this.#closed) return;
    this.#armed = true;
    // A check still waiting for its turn finds the timer set and does not set another.
    if (!this.#timer) this.#schedule();
  }

  /** Stops looking; a check already waiting for its turn runs only if armed again by then. */
  disarm(): void {
    this.#armed = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#closed = true;
    this.disarm();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      afterAnswersRead((asOf) => {
        if (!this.#armed) return;
        try {
          this.#check(asOf);
        } finally {
          if (this.#armed && !this.#timer) this.#schedule();
        }
      });
    }, this.#periodMs);
    // Nothing waits on a watchdog: it never keeps the process alive by itself.
    this.#timer.unref();
  }
}
