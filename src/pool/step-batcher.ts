/**
 * Sends the steps of many sessions to the pool in few tasks. The policy, written once here:
 *
 * - Steps asked for in the same event-loop turn go out together (the timer wheel makes every
 *   step due in one millisecond start in one turn), in one task, or spread over up to one task
 *   per pool thread when there are at least STEP_BATCH_SPREAD_MIN steps for each; at most
 *   STEP_BATCH_MAX steps a task. Their results come back in one message, or in parts while the
 *   task runs longer than STEP_BATCH_ANSWER_US (pool/worker.ts runBatch): each step is told its
 *   end as soon as its part arrives, so a full task's first results do not wait for its last.
 * - A step that ran longer than STEP_BATCH_SOLO_MS runs in a task of its own next time, until
 *   one of its steps is quick again: a slow pipeline never holds others up.
 * - A task still running after STEP_BATCH_STALL_MS is taken apart: the steps not yet begun are
 *   claimed back (pool/messages.ts StepBatchTask) and sent again, and the ones already done are
 *   rolled back and sent again, so only the slow step stays behind. A rolled-back step is run
 *   again from the same state as if it never ran: nothing it wrote was published (the main thread
 *   publishes a step's progress when its answer arrives: spool/progress.ts).
 * - A step whose session is forced (its stop's grace period passed) ends its task's thread; the
 *   other steps of that task are rolled back and sent again. A thread that dies by itself
 *   (process.exit, out of heap) fails the step it was running, and only that one.
 * - A call of a pipeline's step (one producer.step, one consumer.step on one chunk) still running
 *   after STEP_TIMEOUT_MS ends its thread the same way and fails its session. The limit is per
 *   call, timed from when the thread began it (pool/flags.ts markStepBegan), however many calls
 *   the step's task entry makes.
 * - Once the pool is closed, a step fails with PoolClosedError instead of being sent again.
 */
import type { ConsumeStepResult, ProduceStepResult, StepBatchResult, StepBatchTask, StepTask, TaskError } from './messages.js';
import { flagsAt, runningThread, stepStartedAt } from './flags.js';
import type { ClaimSlab } from './claims.js';
import { markRolledBack } from '../spool/progress.js';
import { TurnQueue } from './turn-queue.js';
import { PoolClosedError, ThreadEndedError } from './step-channels.js';
import { Watchdog } from './watchdog.js';

export type StepResult = ProduceStepResult | ConsumeStepResult;

/**
 * Told once how a step ended: its answer (`error` undefined), or null and why it failed (its
 * thread died under it, it was aborted, the pool closed, its code threw). Never called during
 * `run()` itself: the step goes out at the end of the turn at the earliest.
 */
export type StepDone = (result: StepResult | null, error?: unknown) => void;

/** One step on its way: how to end it (terminating its task's thread). */
export interface StepRun {
  abort(reason: Error): void;
}

/** Batching limits (config.ts names the variables). */
export interface BatchLimits {
  /** Most steps in one task. */
  maxEntries: number;
  /** A turn's steps are spread over several tasks (threads) only with at least this many for each. */
  spreadMin: number;
  /** A task running longer than this, ms, has its other steps taken back. */
  stallMs: number;
  /** A step that ran longer than this, ms, runs alone next time. */
  soloMs: number;
  /** A step still running its code after this long, ms, is ended and fails its session (0: never). */
  timeoutMs: number;
}

/** Hooks for metrics. */
export interface BatchObserver {
  /** A task went out with `steps` steps in it. */
  batchSent?(steps: number): void;
  /** `steps` steps were taken back from a task and sent again. */
  takenBack?(steps: number, why: 'stalled' | 'thread_ended'): void;
  /** A step ran past the time limit and was ended. */
  timedOut?(): void;
}

/** A batch on its way: its answer, and how to end it (terminating its thread if it runs). */
export interface BatchRun {
  readonly result: Promise<StepBatchResult>;
  abort(reason: Error): void;
  /** When a thread was given it, epoch ms; 0 while it waits for one. */
  givenAt(): number;
}

/** What the batcher needs of the pool. */
export interface BatchRunner {
  readonly stepThreads: number;
  /** Runs a task; `onPart` is given each part of its answer that comes before the last. */
  runBatch(task: StepBatchTask, onPart: (part: StepBatchResult) => void): BatchRun;
}

/**
 * A step in the batcher: the StepRun its side holds. A callback, not a promise, brings its end
 * back: a step is the service's most frequent event, and promises cost several objects and
 * microtasks each on the main thread.
 */
class Entry implements StepRun {
  /** Set once its session forced it: its reason. */
  aborted: Error | null = null;
  /** The task it is in, while it is in one. */
  batch: Batch | null = null;
  index = -1;

  constructor(
    readonly task: StepTask,
    readonly done: StepDone,
    readonly batcher: StepBatcher,
  ) {}

  abort(reason: Error): void {
    this.batcher.abort(this, reason);
  }
}

interface Batch {
  readonly entries: Entry[];
  /** The task's claim slot (pool/claims.ts): the next entry's index, and when the entry under way began. */
  readonly claimSlot: number;
  /** Its run, once sent. */
  run: BatchRun | null;
  /** Set once a forced session ended it: its thread is being terminated. */
  aborted: boolean;
  /** Taken apart (see #takeApartStalled): only the entry at `takenAt` stayed. */
  taken: boolean;
  takenAt: number;
}

/**
 * Splits a turn's work into tasks: one, or up to one per thread when there are at least
 * `spreadMin` items for each (waking a thread costs more than a quick item), at most
 * `maxEntries` items a task.
 */
export function splitIntoTasks<T>(items: readonly T[], threads: number, limits: Pick<BatchLimits, 'maxEntries' | 'spreadMin'>): T[][] {
  if (items.length === 0) return [];
  const tasks = Math.max(1, Math.min(threads, Math.floor(items.length / limits.spreadMin)));
  const size = Math.min(limits.maxEntries, Math.ceil(items.length / tasks));
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Tells each step of a task how it ended. A handler that throws (a bug on its side's path) must
 * not leave the steps after it unheard, their sides busy and their sessions' stops waiting for
 * ever: every step is told, then the first error is thrown again, on its own, as a promise
 * handler's would have been.
 */
class Endings {
  #error: { thrown: unknown } | null = null;

  tell(e: Entry, result: StepResult | null, error?: unknown): void {
    try {
      e.done(result, error);
    } catch (err) {
      this.#error ??= { thrown: err };
    }
  }

  rethrow(): void {
    const error = this.#error;
    if (error)
      queueMicrotask(() => {
        throw error.thrown;
      });
  }
}

/** Why a step that ran past the time limit (BatchLimits.timeoutMs) failed. */
export class StepTimedOutError extends Error {
  constructor(timeoutMs: number) {
    super(`its step ran longer than STEP_TIMEOUT_MS (${timeoutMs} ms) and its thread was ended`);
    this.name = 'StepTimedOutError';
  }
}

/** Thrown for a step whose code threw outside the pipeline's own error handling (e.g. its module failed to import). */
export class StepThrew extends Error {
  constructor(error: TaskError) {
    super(error.message);
    this.name = error.name;
  }
}

export class StepBatcher {
  readonly #pool: BatchRunner;
  readonly #limits: BatchLimits;
  readonly #queue = new TurnQueue<Entry>((queue) => this.#flush(queue));
  readonly #inFlight = new Set<Batch>();
  /** Runs while a task is under way. */
  readonly #watchdog: Watchdog;
  /** Tasks (one per step side, reused) whose last step was slow: they run alone. */
  readonly #solo = new WeakSet<StepTask>();
  #closed = false;

  readonly #observer: BatchObserver;
  readonly #flagsSlab: SharedArrayBuffer;
  readonly #claims: ClaimSlab;

  /**
   * @param flagsSlab the sessions' flags (a rolled-back step's session is marked there).
   * @param claims where each task's claim slot comes from.
   */
  constructor(pool: BatchRunner, limits: BatchLimits, slabs: { flags: SharedArrayBuffer; claims: ClaimSlab }, observer: BatchObserver = {}) {
    this.#pool = pool;
    this.#limits = limits;
    this.#flagsSlab = slabs.flags;
    this.#claims = slabs.claims;
    this.#observer = observer;
    this.#watchdog = new Watchdog(limits.stallMs, (asOf) => this.#takeApartStalled(asOf));
  }

  /** Sends one step; `done` is told its answer, or that its thread died under it or it was aborted. */
  run(task: StepTask, done: StepDone): StepRun {
    const entry = new Entry(task, done, this);
    this.#enqueue(entry);
    return entry;
  }

  /** Steps waiting for a task, and tasks under way. */
  get stats(): { queued: number; batches: number } {
    return { queued: this.#queue.length, batches: this.#inFlight.size };
  }

  close(): void {
    this.#closed = true;
    this.#watchdog.close();
  }

  #enqueue(entry: Entry): void {
    this.#queue.push(entry);
  }

  #flush(queue: Entry[]): void {
    const shared: Entry[] = [];
    for (const e of queue) {
      if (this.#solo.has(e.task)) this.#send([e]);
      else shared.push(e);
    }
    for (const entries of splitIntoTasks(shared, this.#pool.stepThreads, this.#limits)) this.#send(entries);
  }

  #send(entries: Entry[]): void {
    const slot = this.#claims.alloc();
    if (slot === null) {
      // Every claim slot is in flight (it is sized for more steps than can be): try next turn.
      for (const e of entries) this.#enqueue(e);
      return;
    }
    const batch: Batch = {
      entries,
      claimSlot: slot,
      run: null,
      aborted: false,
      taken: false,
      takenAt: -1,
    };
    entries.forEach((e, i) => {
      e.batch = batch;
      e.index = i;
    });
    this.#inFlight.add(batch);
    this.#observer.batchSent?.(entries.length);
    this.#watchdog.arm();
    const task: StepBatchTask = { kind: 'step-batch', entries: entries.map((e) => e.task), claimSlot: slot };
    batch.run = this.#pool.runBatch(task, (part) => this.#answeredPart(batch, part));
    batch.run.result.then(
      (r) => this.#answered(batch, r),
      (err: unknown) => this.#died(batch, err),
    );
  }

  #answered(batch: Batch, r: StepBatchResult): void {
    this.#inFlight.delete(batch);
    this.#claims.free(batch.claimSlot);
    // Every step left leaves the task before any side hears of its own: what a side does then
    // (stop its session, send its next step) finds the batch settled, as it would after a promise.
    // (Steps answered in an earlier part heard of theirs while the task still ran: #answeredPart.)
    const answered: Entry[] = [];
    for (const e of batch.entries) {
      if (e.batch !== batch) continue; // taken back, or answered in a part, earlier
      this.#leave(e);
      if (r.outcomes[e.index]) answered.push(e);
      else this.#enqueue(e);
    }
    this.#tell(answered, r);
  }

  /**
   * A part of a task's answer: the steps it carries leave the task and are told their ends; the
   * task stays in flight, its other steps with it (those not yet run may still be taken back).
   */
  #answeredPart(batch: Batch, r: StepBatchResult): void {
    const answered: Entry[] = [];
    for (const e of batch.entries) {
      if (e.batch !== batch || !r.outcomes[e.index]) continue;
      this.#leave(e);
      answered.push(e);
    }
    this.#tell(answered, r);
  }

  /** Tells each answered step its outcome in `r`, and marks the slow ones to run alone next time. */
  #tell(answered: readonly Entry[], r: StepBatchResult): void {
    const endings = new Endings();
    for (const e of answered) {
      const outcome = r.outcomes[e.index]!;
      if ('thrown' in outcome) {
        endings.tell(e, null, new StepThrew(outcome.thrown));
      } else {
        const t = outcome.ok.timing;
        if (t && t.finishedAt - t.startedAt > this.#limits.soloMs) this.#solo.add(e.task);
        else this.#solo.delete(e.task);
        endings.tell(e, outcome.ok);
      }
    }
    endings.rethrow();
  }

  #died(batch: Batch, err: unknown): void {
    this.#inFlight.delete(batch);
    // Ended by us, or for another step its thread ran (a resident's): only its aborted steps fail.
    const ourAbort = batch.aborted || err instanceof ThreadEndedError;
    // A closed pool runs nothing more: its steps fail rather than being sent again and again.
    const closed = err instanceof PoolClosedError;
    // Entries are claimed in order: the last one claimed was running when the thread died.
    const running = batch.taken ? batch.takenAt : Math.min(this.#claims.view.claimed(batch.claimSlot), batch.entries.length) - 1;
    this.#claims.free(batch.claimSlot);
    let retried = 0;
    const failed: Array<[Entry, unknown]> = [];
    for (const e of batch.entries) {
      if (e.batch !== batch) continue;
      this.#leave(e);
      if (e.aborted) failed.push([e, e.aborted]);
      else if (closed || (!ourAbort && e.index === running)) failed.push([e, err]);
      else {
        this.#retry(e, e.index <= running);
        retried++;
      }
    }
    if (retried > 0) this.#observer.takenBack?.(retried, 'thread_ended');
    const endings = new Endings();
    for (const [e, why] of failed) endings.tell(e, null, why);
    endings.rethrow();
  }

  /** A step leaves its task for good (answered, failed or taken back). */
  #leave(e: Entry): void {
    e.batch = null;
  }

  /** Sends a step again; one that ran is first rolled back (its unpublished writes are cut). */
  #retry(e: Entry, ran: boolean): void {
    if (ran) markRolledBack(flagsAt(this.#flagsSlab, e.task.flagsSlot));
    this.#enqueue(e);
  }

  /** Ends a step (Entry.abort): its side was forced. */
  abort(e: Entry, reason: Error): void {
    if (e.aborted) return;
    e.aborted = reason;
    if (e.batch === null) {
      // Waiting for a task: it fails at once, as a rejected promise would (in a later microtask).
      if (this.#queue.remove(e)) queueMicrotask(() => e.done(null, reason));
      return;
    }
    // Terminates the task's thread: the only way to end a step that ignores its stop flag.
    e.batch.aborted = true;
    e.batch.run?.abort(reason);
  }

  /**
   * When the pipeline step that entry `e` runs now began, as the thread running it wrote it (0:
   * none runs: its code ended, with its answer not yet handled here, or has not begun). A produce
   * step's lent consumer runs in the same entry, after the producer's steps; a consumer that is
   * not lent may run elsewhere at the same time, so its slot tells nothing about a produce step
   * without one.
   */
  #stepStartedAt(e: Entry): number {
    const flags = flagsAt(this.#flagsSlab, e.task.flagsSlot);
    const producing = e.task.kind === 'produce-step';
    if (producing && runningThread(flags, 'producer') !== 0) return stepStartedAt(flags, 'producer');
    if ((!producing || e.task.consumeAfter) && runningThread(flags, 'consumer') !== 0) return stepStartedAt(flags, 'consumer');
    return 0;
  }

  /**
   * Ends a step that ran past the time limit; leaves a task whose current step has run
   * STEP_BATCH_STALL_MS only that step, and sends the others again. Judged as of `now`, the
   * watchdog's asOf, when every answer posted before it was read (pool/watchdog.ts): steps answered
   * in a part still unread are not rolled back and run again for nothing.
   */
  #takeApartStalled(now: number): void {
    for (const batch of this.#inFlight) {
      // An aborted task's thread is being ended: its exit settles every step (#died), and a forced
      // step must fail there, not be sent again where nothing could force it any more.
      if (batch.aborted) continue;
      const began = this.#claims.view.entryStartedAt(batch.claimSlot);
      const claimed = this.#claims.view.claimed(batch.claimSlot);
      // Its thread claimed past the last entry: every step ran and none runs now, so nothing of it
      // can stall; its answer is on its way (or its thread's end settles it: #died).
      if (claimed > batch.entries.length) continue;
      // Given to a thread a stall ago and not begun: the thread is held by something else (a
      // resident's step, pool/residents.ts): all of it is taken back and sent again. One still
      // waiting for a thread is left be: it goes to the first that is free.
      const givenAt = batch.run?.givenAt() ?? 0;
      if (claimed === 0 && !batch.taken && givenAt > 0 && now - givenAt >= this.#limits.stallMs) {
        this.#takeBack(batch);
        continue;
      }
      // Not begun (waiting for a thread, or just given one) or its current step is still young: leave it be.
      if (claimed === 0 || began === 0 || now - began < this.#limits.stallMs) continue;
      // The limit is on one call of a pipeline's step, not on the entry, which may run many (a
      // consume step's chunks, a producer's burst and its lent consumer): the entry began no
      // later than its current call, so only an entry this old can hold one past the limit.
      if (this.#limits.timeoutMs > 0 && now - began >= this.#limits.timeoutMs) {
        const current = batch.entries[batch.taken ? batch.takenAt : Math.min(claimed, batch.entries.length) - 1];
        // A call begins no earlier than its entry: an earlier time is a stale one, left in the
        // flags by a thread terminated while it ran this session's code (its step ran again).
        const stepBegan = current?.batch === batch ? this.#stepStartedAt(current) : 0;
        if (current && stepBegan >= began && now - stepBegan >= this.#limits.timeoutMs) {
          this.#observer.timedOut?.();
          this.abort(current, new StepTimedOutError(this.#limits.timeoutMs));
          continue;
        }
      }
      if (batch.taken || batch.entries.length === 1) continue;
      const slow = batch.entries[this.#takeBack(batch)];
      if (slow) this.#solo.add(slow.task);
    }
    // Nothing under way: the next task sent arms it again.
    if (this.#inFlight.size === 0) this.#watchdog.disarm();
  }

  /**
   * Claims every entry of `batch` not yet begun and sends its steps again but the one running (those
   * before it are rolled back first); returns the running one's index (-1: none had begun).
   */
  #takeBack(batch: Batch): number {
    batch.taken = true;
    const running = Math.min(this.#claims.view.claimAll(batch.claimSlot, batch.entries.length), batch.entries.length) - 1;
    batch.takenAt = running;
    let retried = 0;
    for (const e of batch.entries) {
      if (e.batch !== batch || e.index === running) continue;
      this.#leave(e);
      this.#retry(e, e.index < running);
      retried++;
    }
    if (retried > 0) this.#observer.takenBack?.(retried, 'stalled');
    return running;
  }
}
