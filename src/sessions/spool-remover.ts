/**
 * Removes ended sessions' spool folders off the main thread. Removing one folder takes several
 * file-system calls (an rmdir that finds it not empty, an lstat, a readdir, an unlink per segment,
 * the rmdir), each a round trip through libuv's threads with its callback on the main thread: a
 * storm of 1,000 STOPs queued 6,000 of them in front of the sockets' closes. Instead, the
 * folders asked for in one event-loop turn go to a step thread in one task (split like steps:
 * pool/step-batcher.ts splitIntoTasks), which removes them with synchronous calls.
 *
 * In a storm of STOPs, removals wait: a removal beyond the SPOOL_REMOVAL_STORM_SESSIONS asked for
 * within SPOOL_REMOVAL_QUIET_MS goes out, with those that waited with it, once none has been asked
 * for in that long, or SPOOL_REMOVAL_MAX_DELAY_MS after the first of them waited, whichever comes
 * first. A steady churn below that rate never waits, however long it lasts. On two cores an rmdir
 * on ext4 costs as much CPU as closing the session's socket, and a step thread removing folders
 * takes a core from the main thread while it is still sending `stopped` and closing sockets; Kafka
 * defers its segment deletion for the same reason (file.delete.delay.ms). Sessions that end one by
 * one, or a few together, are removed at the end of their turn: a client that reads its session's
 * summary right after `stopped` finds it ended.
 *
 * If the pool cannot take the task (it is closing, or the thread died under it), or no step thread
 * has begun it within SPOOL_REMOVAL_THREAD_WAIT_MS (every one is held by a step that does not
 * return, of sessions still running), the folders are removed here, on the main thread: a folder
 * is never left behind, and a stop never waits, for want of a thread.
 */
import type { SpoolRemovalResult, SpoolRemovalTask } from '../pool/messages.js';
import { splitIntoTasks, type BatchLimits } from '../pool/step-batcher.js';
import { TurnQueue } from '../pool/turn-queue.js';
import { nowMs } from '../pool/flags.js';
import { removeSpool } from './spool.js';

/** What the remover needs of the pool. */
export interface SpoolRemovalRunner {
  readonly stepThreads: number;
  removeSpools(task: SpoolRemovalTask): { readonly result: Promise<SpoolRemovalResult>; withdraw(): boolean };
}

/** How long removals wait while they keep coming (config.ts names the variables). */
export interface RemovalDelay {
  /** Removals that go out at once within `quietMs`; the ones beyond them (a storm) wait... */
  stormSessions: number;
  /** ...until none came for this many ms (also the window they are counted in)... */
  quietMs: number;
  /** ...but at most this long after the first that waits, ms. */
  maxMs: number;
  /** A removal no step thread has begun within this long, ms, is done on the main thread instead. */
  threadWaitMs: number;
}

interface Pending {
  dir: string;
  /** Runs when the folder's removal goes out (the session's held descriptors are closed then). */
  release: (() => void) | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SpoolRemover {
  readonly #pool: SpoolRemovalRunner;
  readonly #limits: Pick<BatchLimits, 'maxEntries' | 'spreadMin'>;
  readonly #delay: RemovalDelay;
  /** Removals going out at the end of this turn. */
  readonly #queue = new TurnQueue<Pending>((queue) => this.#flush(queue));
  /** Removals waiting for the storm to pass, and the one timer that sends them. */
  #waiting: Pending[] = [];
  #timer: NodeJS.Timeout | null = null;
  #firstWaitingAt = 0;
  /** When the last SPOOL_REMOVAL_STORM_SESSIONS removals were asked for (nowMs), a ring; #asked counts all. */
  readonly #askedAt: Float64Array;
  #asked = 0;
  /** The service is closing: removals no longer wait. */
  #hurried = false;

  constructor(pool: SpoolRemovalRunner, limits: Pick<BatchLimits, 'maxEntries' | 'spreadMin'>, delay: RemovalDelay) {
    this.#pool = pool;
    this.#limits = limits;
    this.#delay = delay;
    this.#askedAt = new Float64Array(Number.isFinite(delay.stormSessions) ? Math.max(1, delay.stormSessions) : 0);
  }

  /**
   * Resolves once `dir` and everything in it is gone (or was never there); rejects saying why not.
   * `release` runs when the removal goes out, before the folder is touched: in a storm, what it
   * frees (the session's held descriptors) is freed after the storm, with the folder.
   */
  remove(dir: string, release?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const now = nowMs();
      const storm = this.#inStorm(now);
      const pending = { dir, release, resolve, reject };
      if (this.#waiting.length === 0 && (this.#hurried || !storm)) return this.#queue.push(pending);
      if (this.#waiting.length === 0) this.#firstWaitingAt = now;
      this.#waiting.push(pending);
      this.#armTimer(now);
    });
  }

  /** The service is closing: the waiting removals go out now, and later ones at the end of their turn. */
  hurry(): void {
    this.#hurried = true;
    this.#flushWaiting();
  }

  #flushWaiting(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const waiting = this.#waiting;
    this.#waiting = [];
    if (waiting.length > 0) this.#flush(waiting);
  }

  /** Notes a removal asked for at `now`; true when more than SPOOL_REMOVAL_STORM_SESSIONS were within SPOOL_REMOVAL_QUIET_MS. */
  #inStorm(now: number): boolean {
    const ring = this.#askedAt;
    if (ring.length === 0) return false;
    const at = this.#asked % ring.length;
    // The slot holds the time of the removal asked for STORM_SESSIONS removals ago.
    const storm = this.#asked >= ring.length && now - ring[at]! < this.#delay.quietMs;
    ring[at] = now;
    this.#asked++;
    return storm;
  }

  /** When the waiting removals go out: the quiet spell after the last one asked for, or the longest wait, whichever ends first. */
  #waitingDueAt(): number {
    // Removals wait only when the ring is in use: its newest slot is the last one asked for.
    const lastAskedAt = this.#askedAt[(this.#asked - 1) % this.#askedAt.length]!;
    return Math.min(lastAskedAt + this.#delay.quietMs, this.#firstWaitingAt + this.#delay.maxMs);
  }

  /** One timer for every waiting removal. */
  #armTimer(now: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const at = nowMs();
      // More came meanwhile: the quiet spell began again (still bounded by the longest wait).
      if (at < this.#waitingDueAt()) return this.#armTimer(at);
      this.#flushWaiting();
    }, Math.max(0, this.#waitingDueAt() - now));
  }

  #flush(queue: Pending[]): void {
    for (const p of queue) {
      try {
        p.release?.();
      } catch {
        // What it frees is the session's own (its descriptors): its folder goes regardless.
      }
    }
    for (const part of splitIntoTasks(queue, this.#pool.stepThreads, this.#limits)) void this.#send(part);
  }

  async #send(part: Pending[]): Promise<void> {
    let result: SpoolRemovalResult;
    const run = this.#pool.removeSpools({ kind: 'remove-spools', dirs: part.map((p) => p.dir) });
    const unbegun = setTimeout(() => run.withdraw(), this.#delay.threadWaitMs);
    try {
      result = await run.result;
    } catch {
      // No thread took it: remove them here, each on its own.
      await Promise.all(part.map((p) => removeSpool(p.dir).then(p.resolve, (err: unknown) => p.reject(asError(err)))));
      return;
    } finally {
      clearTimeout(unbegun);
    }
    part.forEach((p, i) => {
      const error = result.errors[i];
      if (error) p.reject(new Error(error));
      else p.resolve();
    });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
