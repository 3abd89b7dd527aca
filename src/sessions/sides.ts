/**
 * The two sides of a session as the main thread drives them. A step side runs one bounded
 * task at a time and waits between steps on a main-thread timer, holding no thread; a loop
 * side is a single task that holds a loop-pool thread until it returns.
 */
import type { WorkerPool } from '../pool/worker-pool.js';
import type { StepDone, StepResult, StepRun } from '../pool/step-batcher.js';
import type { SessionFlags } from '../pool/flags.js';
import { publishChunks, publishConsumed, publishProducerDone, publishResults, removeLeft } from '../spool/progress.js';
import type { WheelTimer } from './timer-wheel.js';
import {
  consumeStepTask,
  produceStepTask,
  type ChunkRecord,
  type ConsumeStepResult,
  type ConsumeStepTask,
  type LoopResult,
  type ProduceStepResult,
  type ProduceStepTask,
  type ResultRecord,
  type TaskError,
  type StepSessionRef,
  type TaskSession,
  type TaskTiming,
} from '../pool/messages.js';
import { nowMs } from '../pool/flags.js';
import { consumerLendable, nextStepDue } from './pacing.js';
import type { QuietSteps, ResidentHandler, ResidentRun } from '../pool/residents.js';

export type SideName = 'producer' | 'consumer';
export type SideState = 'idle' | 'running' | 'waiting' | 'paused' | 'done' | 'stopped' | 'failed';
/** `client`: the session's client is its producer (sessions/client-producer.ts): no thread, no task. */
export type SideShape = 'step' | 'loop' | 'client';

/** What a side needs from its session. */
export interface SideHost {
  /** Runs loops. */
  readonly pool: WorkerPool;
  readonly flags: SessionFlags;
  /** A step began a new segment of `kind` and it was published: the main thread holds that one open now. */
  followSegment(kind: 'chunks' | 'results', segment: number): void;
  /** Runs one step (batched with other sessions' steps: pool/step-batcher.ts); `done` hears how it ended. */
  runStep(task: ProduceStepTask | ConsumeStepTask, done: StepDone): StepRun;
  /**
   * The least wait between a step producer's steps that makes it resident on a step thread
   * (pool/residents.ts; Infinity: resident steps are off, STEP_RESIDENTS, or the step producers'
   * load does not allow more now, STEP_RESIDENTS_MAX_LOAD: pool/step-load.ts).
   */
  readonly residentMinMs: number;
  /** A step producer's step was taken in (resident or not): the residents' load counts it (pool/residents.ts). */
  stepTaken(): void;
  /** The step producers' load passed STEP_RESIDENTS_MAX_LOAD by a quarter: a resident goes back to the main thread's path. */
  readonly residentsCrowded: boolean;
  /** Hands a step producer, its consumer lent, to a step thread to keep: null when none has room. */
  adopt(task: ProduceStepTask, dueAt: number, handler: ResidentHandler): ResidentRun | null;
  /** Calls `fn` after `delayMs` (one timer for all sessions: timer-wheel.ts), through `reuse` if given. */
  schedule(fn: () => void, delayMs: number, reuse?: WheelTimer): WheelTimer;
  task(): TaskSession;
  /** How a step task names the session (its TaskSession, serialised once). */
  stepRef(): StepSessionRef;
  onChunks(chunks: ChunkRecord[]): void;
  onResults(results: ResultRecord[]): void;
  /** A resident's quiet steps (pool/quiet-steps.ts) wrote, consumed and delivered every seq up to `lastSeq`. */
  onQuietSteps(q: QuietSteps, lastSeq: number): void;
  /** The producer will write nothing after `lastSeq`. */
  onProducerDone(lastSeq: number): void;
  /** A loop consumer returned by itself. */
  onConsumerReturned(lastSeq: number): void;
  onSideError(side: SideName, error: TaskError): void;
  /** A task of this side returned: how long it waited for a thread and ran on it, in ms. */
  onTaskTimed(side: SideName, shape: 'step' | 'loop', waitMs: number, runMs: number): void;
  /** False while the spool is at its quota: the producer must not write. */
  producerMayRun(): boolean;
  /** Room left under the spool's quotas: a producer's burst stops there. */
  spoolRoom(): { chunks: number; bytes: number };
  /** False while the client cannot take results: the consumer must not run. */
  consumerMayRun(): boolean;
  /**
   * Whether a step thread wrote results to the client whose answer has not been taken in yet
   * (STEP_SENDS): a resident is then not taken back without its thread, which would drop that answer.
   */
  answerOnItsWay(): boolean;
}

export abstract class Side {
  abstract readonly name: SideName;
  abstract readonly shape: SideShape;
  state: SideState = 'idle';
  steps = 0;
  lastError: string | null = null;
  /** The stack of the last error, for the log and inspect only. */
  lastErrorStack: string | null = null;
  /**
   * A loop side that returned: the last seq it posted (chunks or results). Its events travel on
   * another channel than its answer, so some may still be on their way when it has returned.
   */
  returnedLastSeq: number | null = null;
  protected readonly host: SideHost;
  protected halted = false;
  readonly #abort = new AbortController();
  /** Tasks and steps of this side under way (a step side has at most one step at a time). */
  #inflight = 0;
  /** This side's step under way, so that force() can end it: its own, or its producer's when lent. */
  #step: StepRun | null = null;
  #stepSentAt = 0;
  /** The one timer object this side waits with (see later()). */
  readonly #waitTimer: WheelTimer = { fn: null, due: 0 };
  /** What runs when the wait under way ends; null while this side waits for nothing. */
  #afterWait: (() => void) | null = null;
  #idleWaiters: Array<() => void> = [];

  constructor(host: SideHost) {
    this.host = host;
  }

  abstract start(): void;

  /** Called when whatever paused this side has cleared (step sides run again; loops use flags). */
  resume(): void {}

  protected get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Counts `run` (this side's step, or its producer's when this consumer is lent to it) as under
   * way until stepEnded(), so that force() can end it. A step side has one step at a time.
   */
  protected stepSent(run: StepRun): void {
    this.#step = run;
    this.#stepSentAt = nowMs();
    this.#inflight++;
    this.state = 'running';
  }

  /** The step counted by stepSent() ended: `failed` with `error`, or with its answer `r`. */
  protected stepEnded<T extends { timing?: TaskTiming } | null>(failed: boolean, r: T, error: unknown, onResult: (r: T) => void): void {
    this.#step = null;
    this.#ended(this.#stepSentAt, failed, r, error, onResult);
  }

  /** Runs a loop task, counting it as in flight until it settles. */
  protected track<T extends { timing?: TaskTiming } | null>(task: Promise<T>, onResult: (r: T) => void): void {
    this.#inflight++;
    this.state = 'running';
    const submittedAt = nowMs();
    task.then(
      (r) => this.#ended(submittedAt, false, r, undefined, onResult),
      (err: unknown) => this.#ended(submittedAt, true, null as T, err, onResult),
    );
  }

  /** A task or step of this side ended: `failed` with `error`, or with its answer `r`. */
  #ended<T extends { timing?: TaskTiming } | null>(submittedAt: number, failed: boolean, r: T, error: unknown, onResult: (r: T) => void): void {
    this.#inflight--;
    if (!failed) {
      try {
        // A lent consumer's result (inside its producer's task) carries no timing of its own.
        if (r?.timing) {
          // Only step and loop sides run tasks.
          this.host.onTaskTimed(this.name, this.shape as 'step' | 'loop', r.timing.startedAt - submittedAt, r.timing.finishedAt - r.timing.startedAt);
        }
        onResult(r);
      } catch (err) {
        // A bug on this side's path must end its session, never the process.
        this.fail({ name: 'InternalError', message: `internal error: ${err instanceof Error ? err.message : String(err)}` });
      }
    } else if (this.#abort.signal.aborted) {
      this.state = 'stopped';
    } else {
      // The thread died under the task: process.exit, out of heap, a native crash.
      this.fail({ name: 'WorkerError', message: error instanceof Error ? error.message : String(error) });
    }
    this.#settle();
  }

  /**
   * Runs `fn` after `delayMs`, in place of any wait still pending (a side waits for one thing at a
   * time: its producer's next step). Allocates nothing: a wait lives a whole period (a second at 1 Hz),
   * and every object made for it would be copied by two scavenges and promoted, which at 10,000
   * sessions made the main thread's scavenges several ms long (docs/PERFORMANCE.md).
   */
  protected later(fn: () => void, delayMs: number): void {
    this.state = 'waiting';
    // Nothing to wait for: the next step goes out in this turn, with the steps of the other
    // sessions answered in the same message (so they keep sharing tasks).
    if (delayMs <= 0) return fn();
    this.#afterWait = fn;
    this.host.schedule(this.#waited, delayMs, this.#waitTimer);
  }

  readonly #waited = (): void => {
    const fn = this.#afterWait;
    this.#afterWait = null;
    fn?.();
  };

  protected fail(error: TaskError): void {
    this.state = 'failed';
    this.lastError = error.message;
    this.lastErrorStack = error.stack ?? null;
    this.host.onSideError(this.name, error);
  }

  /** Schedules nothing more; work already running finishes or is forced. */
  halt(): void {
    this.halted = true;
    if (this.#afterWait) {
      this.#waitTimer.fn = null;
      this.#afterWait = null;
    }
    this.#settle();
  }

  /** Ends whatever still runs: a running task's thread is terminated. */
  force(): void {
    const reason = new Error('stop grace period elapsed');
    this.#abort.abort(reason);
    this.#step?.abort(reason);
  }

  get busy(): boolean {
    return this.#inflight > 0;
  }

  /** Resolves once nothing of this side runs or waits. */
  idle(): Promise<void> {
    if (this.#inflight === 0 && !this.#afterWait) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #settle(): void {
    if (this.#inflight > 0 || this.#afterWait) return;
    if (this.halted && this.state !== 'failed' && this.state !== 'done') this.state = 'stopped';
    // Most steps end with nobody waiting: keep the (empty) list rather than make a new one.
    if (this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

export class StepProducer extends Side {
  readonly name = 'producer';
  readonly shape = 'step';
  /**
   * Built once and updated in place: a side has one task in flight at a time and the pool
   * clones it when posting, so copying the session fields per step would only make garbage.
   */
  #task: ProduceStepTask | null = null;
  #partner: StepConsumer | null = null;
  /** The consumer lent to the step under way, if any. */
  #lent: StepConsumer | null = null;
  /** Kept by a step thread (pool/residents.ts): its steps run there until it is handed back. */
  #resident: ResidentRun | null = null;
  /** The answer just taken asked for this wait, and the side may become resident for it (-1: no). */
  #adoptAfter = -1;
  /** Set by leaveThread(): the next answer's step runs on the main thread's path, not resident. */
  #stayOff = false;
  /** Asked to be handed back (#handBack): asked once, until the residency ends. */
  #handingBack = false;

  /** Whether a step thread keeps it now (pool/residents.ts). */
  get resident(): boolean {
    return this.#resident !== null;
  }

  /** A step consumer of the same session, lent to this side's tasks whenever it has nothing to do. */
  pairWith(consumer: StepConsumer): void {
    this.#partner = consumer;
  }

  start(): void {
    this.#task = produceStepTask(this.host.stepRef(), {
      state: undefined,
      nextSeq: 1,
      consumeAfter: false,
      consumerState: undefined,
      roomChunks: 0,
      roomBytes: 0,
    });
    this.#dueAt = nowMs();
    this.#run();
  }

  #paused = false;
  /** When the step under way was due, ms. */
  #dueAt = 0;
  readonly #rateSlackMs: number;

  /** @param rateSlackMs how late a step may be answered and the producer keep its rate (PRODUCER_RATE_SLACK_MS). */
  constructor(host: SideHost, rateSlackMs: number) {
    super(host);
    this.#rateSlackMs = rateSlackMs;
  }

  /** Schedules the next step (sessions/pacing.ts says when it is due). */
  #next(delayMs: number): void {
    const now = nowMs();
    this.#dueAt = nextStepDue(this.#dueAt, now, delayMs, this.#rateSlackMs);
    this.later(this.#run, this.#dueAt - now);
  }

  #run = (): void => {
    // One step at a time: a step under way sends the next one when it is answered.
    if (this.halted || this.busy) return;
    if (!this.host.producerMayRun()) {
      this.#paused = true;
      this.state = 'paused';
      return;
    }
    const task = this.#task!;
    const room = this.host.spoolRoom();
    task.roomChunks = room.chunks;
    task.roomBytes = room.bytes;
    const partner = this.#partner?.available() ? this.#partner : null;
    task.consumeAfter = partner !== null;
    task.consumerState = partner?.pipelineState;
    this.#lent = partner;
    const run = this.host.runStep(task, this.#stepDone);
    this.stepSent(run);
    partner?.lend(run);
  };

  /** The step ended: this side hears first (its chunks are then known), then the consumer lent to it. */
  readonly #stepDone: StepDone = (result: StepResult | null, error?: unknown): void => {
    const partner = this.#lent;
    this.#lent = null;
    const r = result as ProduceStepResult | null;
    try {
      this.stepEnded(r === null, r!, error, this.#answered);
    } finally {
      partner?.lentEnded(r, error);
    }
    // Only now is the consumer free to be lent again, to a resident.
    if (this.#adoptAfter >= 0) {
      const delayMs = this.#adoptAfter;
      this.#adoptAfter = -1;
      this.#adoptOrNext(delayMs);
    }
  };

  readonly #answered = (r: ProduceStepResult): void => {
    if (!this.#take(r)) return;
    const stayOff = this.#stayOff;
    this.#stayOff = false;
    if (r.delayMs >= this.host.residentMinMs && this.#partner && !stayOff) this.#adoptAfter = r.delayMs;
    else this.#next(r.delayMs);
  };

  /** Hands this side and its consumer to a step thread, if both may go; else waits on the main thread's path. */
  #adoptOrNext(delayMs: number): void {
    const partner = this.#partner;
    if (this.halted || this.busy) return;
    if (partner?.available() && this.host.producerMayRun()) {
      const dueAt = nextStepDue(this.#dueAt, nowMs(), delayMs, this.#rateSlackMs);
      const task = this.#task!;
      const room = this.host.spoolRoom();
      // The task carries the session's description (stepRef): the thread keeps it for the residency.
      const step = produceStepTask(task, {
        state: task.state,
        nextSeq: task.nextSeq,
        consumeAfter: true,
        consumerState: partner.pipelineState,
        roomChunks: room.chunks,
        roomBytes: room.bytes,
      });
      const run = this.host.adopt(step, dueAt, this.#residentHandler);
      if (run) {
        this.#dueAt = dueAt;
        this.#resident = run;
        this.#lent = partner;
        this.stepSent(run);
        partner.lend(run);
        this.state = partner.state = 'waiting';
        return;
      }
    }
    this.#next(delayMs);
  }

  readonly #residentHandler: ResidentHandler = {
    ran: (r, dueAt) => {
      this.#dueAt = dueAt;
      this.#timed(r, dueAt);
      this.#take(r);
      if (r.consumed) this.#lent?.lentRan(r.consumed);
      // The step producers' load is past what residents pay for: this one goes back to the main
      // thread's path, as the others do at their next step.
      if (this.host.residentsCrowded) this.#handBack();
    },
    quiet: (q) => {
      const task = this.#task!;
      this.steps += q.calls;
      task.nextSeq = q.nextSeq;
      if (q.states) task.state = q.states.state;
      this.#lent?.lentQuiet(q);
      try {
        this.host.onQuietSteps(q, q.nextSeq - 1);
      } catch (err) {
        // A bug on this session's path ends it, never the process or the other residents.
        this.fail({ name: 'InternalError', message: `internal error: ${err instanceof Error ? err.message : String(err)}` });
        return;
      }
      if (this.host.residentsCrowded && !this.halted) this.#handBack();
    },
    ended: (r, dueAt, error) => {
      this.#resident = null;
      this.#handingBack = false;
      if (this.#residencyEnded.length > 0) {
        const waiters = this.#residencyEnded;
        this.#residencyEnded = [];
        for (const w of waiters) queueMicrotask(w);
      }
      this.#dueAt = dueAt;
      if (r) {
        // Timed from its due time here: Side would time it from the adoption.
        this.#timed(r, dueAt);
        delete r.timing;
      }
      if (r || error !== undefined) return this.#stepDone(r, error);
      // Handed back with no step run: it goes on from its last answer, on the main thread's path.
      const partner = this.#lent;
      this.#lent = null;
      try {
        this.stepEnded(false, UNRUN, undefined, () => {});
      } finally {
        partner?.lentEnded(UNRUN, undefined);
      }
      if (!this.halted) this.later(this.#run, dueAt - nowMs());
    },
  };

  /** A resident step's wait (from its due time) and run, for the metrics. */
  #timed(r: ProduceStepResult, dueAt: number): void {
    const t = r.timing;
    if (t) this.host.onTaskTimed('producer', 'step', t.startedAt - dueAt, t.finishedAt - t.startedAt);
  }

  override halt(): void {
    super.halt();
    // What its quiet steps sent counts as delivered: only an answer truly on its way is waited for.
    this.#resident?.catchUp();
    // No step follows a halt: the states its quiet steps left are not read.
    this.#resident?.release(this.host.answerOnItsWay(), true);
  }

  /** Its side is told now what its quiet steps came to (pool/quiet-steps.ts), if it is resident. */
  catchUp(): void {
    this.#resident?.catchUp();
  }

  /**
   * Resolves once no step thread keeps it: handed back now if it is resident (it may become
   * resident again later). A RESUME waits for it, so that every result a step thread sent is
   * counted before the replay is chosen.
   */
  leaveResidency(): Promise<void> {
    if (!this.#resident) return Promise.resolve();
    return new Promise((resolve) => {
      this.#residencyEnded.push(resolve);
      this.#handBack();
    });
  }

  /** Who waits for the residency to end (leaveResidency). */
  #residencyEnded: Array<() => void> = [];

  /**
   * Handed back now if it is resident, and its next step runs on the main thread's path: the
   * session's held log descriptors are wanted back (spool/log-files.ts), which a side gives only
   * between steps, and a resident is always on its way. Once it gave them back it stays on that
   * path (Session.adopt keeps only sessions holding their files) until it holds them again.
   */
  leaveThread(): void {
    this.#stayOff = true;
    this.#handBack();
  }

  /** Asks the step thread for this resident back (once), after the answer it may have on its way. */
  #handBack(): void {
    if (!this.#resident || this.#handingBack) return;
    this.#handingBack = true;
    // What its quiet steps sent counts as delivered: only an answer truly on its way is waited for.
    this.#resident.catchUp();
    this.#resident?.release(this.host.answerOnItsWay());
  }

  /** Takes a step's answer in (publishes it, counts it): false when no next step follows. */
  #take(r: ProduceStepResult): boolean {
    if (r.skipped) return false;
    this.host.stepTaken();
    const task = this.#task!;
    // The step's answer is in: its chunks become visible to the consumer (spool/progress.ts).
    if (r.chunkLog) {
      publishChunks(this.host.flags, r.chunkLog);
      this.host.followSegment('chunks', r.chunkLog.segment);
    }
    if (r.done) publishProducerDone(this.host.flags);
    this.steps += r.calls;
    task.state = r.state;
    if (r.chunks.length > 0) {
      task.nextSeq = r.chunks[r.chunks.length - 1]!.seq + 1;
      this.host.onChunks(r.chunks);
    }
    if (r.error) {
      this.fail(r.error);
      return false;
    }
    if (r.done) {
      this.state = 'done';
      this.host.onProducerDone(task.nextSeq - 1);
      return false;
    }
    return !this.halted;
  }

  override resume(): void {
    if (!this.#paused || this.halted) return;
    this.#paused = false;
    this.#dueAt = nowMs();
    this.#run();
  }
}

/** A resident handed back with no step run: nothing to take in. */
const UNRUN: ProduceStepResult = Object.freeze({ skipped: true, state: undefined, delayMs: 0, done: false, chunks: [], calls: 0, threadId: 0 });

export class StepConsumer extends Side {
  readonly name = 'consumer';
  readonly shape = 'step';
  readonly #batchMax: number;
  #queue: number[] = [];
  /** Built once, updated in place (see StepProducer). */
  #task: ConsumeStepTask | null = null;
  #consumerState: unknown = undefined;
  /** Highest seq handed to a consume task or consumed by a lent one. */
  #taken = 0;

  constructor(host: SideHost, batchMax: number) {
    super(host);
    this.#batchMax = batchMax;
  }

  start(): void {
    this.state = 'waiting';
  }

  /** New complete chunks, in order. Chunks a lent task already consumed are skipped. */
  push(chunks: readonly ChunkRecord[]): void {
    for (const c of chunks) if (c.seq > this.#taken) this.#queue.push(c.seq);
    this.#kick();
  }

  override resume(): void {
    this.#kick();
  }

  /** The pipeline state carried between this consumer's steps. */
  get pipelineState(): unknown {
    return this.#consumerState;
  }

  /** True when nothing is queued or running and the consumer is quick (sessions/pacing.ts), so the producer's next task may consume for us. */
  available(): boolean {
    return (
      !this.busy &&
      !this.halted &&
      this.#queue.length === 0 &&
      consumerLendable(this.host.flags) &&
      this.host.consumerMayRun()
    );
  }

  /**
   * Counts the producer's task as this side's own until it settles, and takes the results it
   * brings. While lent, this side runs nothing else, so chunks are still consumed one at a time
   * and in order; any the task did not consume stay queued for the next kick.
   */
  lend(run: StepRun): void {
    this.stepSent(run);
  }

  /** The producer's step this side was lent to ended: `r` is its answer, or null when it failed with `error`. */
  lentEnded(r: ProduceStepResult | null, error: unknown): void {
    this.stepEnded(r === null, r?.consumed ?? null, error, this.#settled);
  }

  #kick(): void {
    if (this.busy || this.halted || this.#queue.length === 0) return;
    if (!this.host.consumerMayRun()) {
      this.state = 'paused';
      return;
    }
    const task = (this.#task ??= consumeStepTask(this.host.stepRef(), undefined, []));
    task.state = this.#consumerState;
    task.seqs = this.#queue.length <= this.#batchMax ? this.#queue : this.#queue.slice(0, this.#batchMax);
    this.#queue = this.#queue.length <= this.#batchMax ? [] : this.#queue.slice(this.#batchMax);
    this.#taken = task.seqs[task.seqs.length - 1]!;
    this.stepSent(this.host.runStep(task, this.#stepDone));
  }

  readonly #stepDone: StepDone = (result: StepResult | null, error?: unknown): void => {
    this.stepEnded(result === null, result as ConsumeStepResult | null, error, this.#settled);
  };

  /** Quiet steps of the producer this side is lent to consumed every chunk they wrote (pool/quiet-steps.ts). */
  lentQuiet(q: QuietSteps): void {
    this.steps += q.results;
    if (q.states) this.#consumerState = q.states.consumerState;
    const last = q.nextSeq - 1;
    if (last > this.#taken) this.#taken = last;
  }

  /** A resident step of the producer this side is lent to ran: its results are taken in; it stays lent. */
  lentRan(r: ConsumeStepResult): void {
    if (!r.skipped) this.#take(r);
  }

  readonly #settled = (r: ConsumeStepResult | null): void => {
    if (r?.skipped) return;
    if (r && !this.#take(r)) return;
    this.state = 'waiting';
    this.#kick();
  };

  /** Takes a step's answer in (publishes it, sends its results): false when it failed. */
  #take(r: ConsumeStepResult): boolean {
    {
      // The step's answer is in: its results are logged, its chunks count as consumed.
      if (r.resultLog) {
        publishResults(this.host.flags, r.resultLog);
        this.host.followSegment('results', r.resultLog.segment);
      }
      if (r.readMark) {
        publishConsumed(this.host.flags, r.readMark);
        // Segments the read moved past (one every SPOOL_SEGMENT_BYTES): most steps leave none.
        if (r.readMark.left.length > 0) {
          const { spoolDir, keep } = this.host.task();
          void removeLeft(spoolDir, keep, r.readMark.left).catch(() => {});
        }
      }
      this.steps += r.results.length + (r.error ? 1 : 0);
      this.#consumerState = r.state;
      const last = r.results[r.results.length - 1];
      if (last && last.seq > this.#taken) {
        this.#taken = last.seq;
        while (this.#queue.length > 0 && this.#queue[0]! <= last.seq) this.#queue.shift();
      }
      if (r.results.length > 0) this.host.onResults(r.results);
      if (r.error) {
        this.fail(r.error);
        return false;
      }
    }
    return true;
  }
}

export class LoopProducer extends Side {
  readonly name = 'producer';
  readonly shape = 'loop';

  start(): void {
    const task = { ...this.host.task(), kind: 'produce-loop' as const, nextSeq: 1 };
    this.track(this.host.pool.runLoop(task, this.signal), (r: LoopResult) => {
      this.steps = 1;
      this.returnedLastSeq = r.lastSeq;
      if (r.error) return this.fail(r.error);
      this.state = 'done';
      this.host.onProducerDone(r.lastSeq);
    });
  }
}

export class LoopConsumer extends Side {
  readonly name = 'consumer';
  readonly shape = 'loop';

  start(): void {
    const task = { ...this.host.task(), kind: 'consume-loop' as const, nextSeq: 1 };
    this.track(this.host.pool.runLoop(task, this.signal), (r: LoopResult) => {
      this.steps = 1;
      this.returnedLastSeq = r.lastSeq;
      if (r.error) return this.fail(r.error);
      this.state = 'done';
      this.host.onConsumerReturned(r.lastSeq);
    });
  }
}
