/**
 * Resident steps, the main thread's side (the thread's: pool/residents-thread.ts). A step producer
 * whose consumer can be lent and whose steps wait at least STEP_RESIDENT_MIN_MS is handed to a step
 * thread, which keeps its schedule and state and posts one message per tick with every due
 * session's answer: the main thread then never schedules, batches or posts a step for it, only
 * publishes its progress and sends its results (docs/PERFORMANCE.md, "The step thread keeps the
 * schedule"). The guarantees are a batch's (pool/step-batcher.ts):
 *
 * - A stop releases its resident: the thread drops it and says so (after any answer it posted
 *   for it), and only then does the session's side settle, so `stopped` still means no thread
 *   runs anything of it.
 * - A resident overdue by STEP_BATCH_STALL_MS (and STEP_RESIDENT_ANSWER_MS, the longest its thread
 *   may gather its answer) while its thread is held by something else (another
 *   resident's step, a batch's) is taken back (FLAG.RESIDENT's token, swapped without the thread's
 *   help), rolled back (what it wrote past its published ends is cut by its next writer) and goes on
 *   from its last answer on the main thread's path. A thread held by a resident's own step past
 *   STEP_BATCH_STALL_MS gets no job and no resident until it answers again; past STEP_TIMEOUT_MS
 *   that step's thread is ended and its session fails, as for a batch.
 * - A thread gone (died, ended for a forced stop or a timeout, the pool closed) fails the resident
 *   whose step it ran, if any; its other residents are rolled back and go on from their last answer.
 */
import { FLAG, endResidency, flagsAt, nowMs, residentRunning, stepStartedAt, type SessionFlags } from './flags.js';
import { markRolledBack } from '../spool/progress.js';
import { unpackBatch } from './answer-codec.js';
import { RESIDENT_END, RESIDENT_META, type ProduceStepResult, type ProduceStepTask, type ResidentAnswers } from './messages.js';
import { PoolClosedError, type ResidentListener, type ResidentPlace, type StepChannels } from './step-channels.js';
import { StepThrew, StepTimedOutError, type BatchObserver, type StepRun } from './step-batcher.js';
import { nextStepDue } from '../sessions/pacing.js';
import { Watchdog } from './watchdog.js';
import { LOAD_SAMPLE_MS, StepLoad } from './step-load.js';
import { SAMPLE_FIELDS, ackAnswer, copyQuietProgress, noQuietProgress, quietDueAt, quietStep, quietTorn, resetQuiet, type QuietProgress, type QuietReader } from './quiet-steps.js';

/** Resident limits (config.ts names the variables). */
export interface ResidentLimits {
  /** Most residents one step thread keeps (STEP_RESIDENTS_PER_THREAD). */
  perThread: number;
  /**
   * Step producers' steps a second per active step thread, above which none is made resident and,
   * past it by a quarter, residents go back (STEP_RESIDENTS_MAX_LOAD; 0: no limit).
   */
  maxLoadPerS: number;
  /** How long the load stays at or under the limit before producers are made resident again, ms (STEP_RESIDENTS_LOAD_HOLD_MS). */
  loadHoldMs: number;
  /** The least wait between a producer's steps that makes it resident, ms (STEP_RESIDENT_MIN_MS). */
  minWaitMs: number;
  /** STEP_BATCH_STALL_MS. */
  stallMs: number;
  /** STEP_TIMEOUT_MS (0: never). */
  timeoutMs: number;
  /**
   * How long a thread may gather an answer whose results it sent before posting it, ms
   * (STEP_RESIDENT_ANSWER_MS; 0 without STEP_SENDS): a resident between steps is overdue only
   * this much later than STEP_BATCH_STALL_MS.
   */
  answerMs: number;
  /** How often the main thread reads what its residents' quiet steps came to, ms (STEP_QUIET_CATCH_UP_MS). */
  catchUpMs: number;
}

/** What a resident's side hears. */
export interface ResidentHandler {
  /** A step due at `dueAt` ran on the thread; the thread keeps the session. */
  ran(result: ProduceStepResult, dueAt: number): void;
  /**
   * The residency ended, once: with the answer of the step due at `dueAt` (the side goes on from it
   * as after any step), with none (it goes on from its last answer, its next step due at `dueAt`),
   * or with `error` (its step failed on the thread, or was ended).
   */
  ended(result: ProduceStepResult | null, dueAt: number, error?: unknown): void;
  /**
   * Steps that needed no answer ran (pool/quiet-steps.ts): what they came to since the last time
   * told, before any answer of a later step and before the residency ends. `states` are given
   * when the residency ends without an answer: the side goes on from them.
   */
  quiet(q: QuietSteps): void;
}

/** What a resident's quiet steps came to since its side was last told. */
export interface QuietSteps {
  steps: number;
  calls: number;
  chunks: number;
  bytes: number;
  /**
   * Results, each delivered by the step thread; one sample each in `samples` (quiet-steps.ts SAMPLE),
   * 5 numbers a sample, the first `results` of them (the array is reused: it may be longer).
   */
  results: number;
  samples: Float64Array;
  /** The producer's next seq. */
  nextSeq: number;
  states: { state: unknown; consumerState: unknown } | null;
}

/** A resident as its side holds it: ended by force (StepRun.abort), or let go at a stop. */
export interface ResidentRun extends StepRun {
  /**
   * `waitForAnswer`: its thread hands it back (after the answer it may have on its way), never
   * taken back without it. `ending`: its session ends, no step follows, so the states of its last
   * quiet steps are not read.
   */
  release(waitForAnswer?: boolean, ending?: boolean): void;
  /** Its side is told now what its quiet steps came to (pool/quiet-steps.ts), not at the next catch-up. */
  catchUp(): void;
}

class Resident implements ResidentRun {
  /** Set once its stop forced it: the reason it fails with. */
  aborted: Error | null = null;
  timedOut = false;
  done = false;

  constructor(
    readonly token: number,
    readonly place: ResidentPlace,
    readonly flags: SessionFlags,
    readonly handler: ResidentHandler,
    readonly rateSlackMs: number,
    /** When its next answer is due, as far as the main thread knows (its thread's own clock decides). */
    public expectedAt: number,
    readonly owner: ResidentSteps,
    readonly slot: number,
  ) {}

  /** The last step its side knows of: a quiet one caught up with, or an answer taken in (pool/quiet-steps.ts). */
  knownStep = 0;
  /** The last step whose states its side has: an answer's, or a quiet step's read at the residency's end. */
  statesStep = 0;
  /** Its quiet steps' totals as far as its side was told: what the next catch-up counts from. */
  readonly applied: QuietProgress = noQuietProgress();

  abort(reason: Error): void {
    this.owner.abort(this, reason);
  }

  release(waitForAnswer = false, ending = false): void {
    this.owner.release(this, waitForAnswer, ending);
  }

  catchUp(): void {
    this.owner.catchUp(this);
  }
}

export class ResidentSteps implements ResidentListener {
  readonly #channels: StepChannels;
  readonly #flagsSlab: SharedArrayBuffer;
  readonly #limits: ResidentLimits;
  readonly #observer: BatchObserver;
  readonly #byToken = new Map<number, Resident>();
  #nextToken = 1;
  /** Residencies begun; taken back overdue; rolled back when their thread went; steps that needed no answer (pool/quiet-steps.ts). */
  readonly totals = { adopted: 0, takenBack: 0, rolledBack: 0, quietSteps: 0 };
  /** Runs while a resident lives or a thread is held. */
  readonly #watchdog: Watchdog;
  #closed = false;
  /** The step producers' load (STEP_RESIDENTS_MAX_LOAD), and the timer that closes its samples (none without a limit). */
  readonly #load: StepLoad;
  readonly #loadTimer: NodeJS.Timeout | null;
  /** Reads the residents' quiet steps (null: every step is answered), and the timer that does it now and then. */
  readonly #quiet: QuietReader | null;
  readonly #catchUpTimer: NodeJS.Timeout | null;
  readonly #read: QuietProgress = noQuietProgress();
  #samples = new Float64Array(SAMPLE_FIELDS * 64);
  /** What #catchUp tells a side: one object, reused (a side reads it at once). */
  readonly #told: QuietSteps = { steps: 0, calls: 0, chunks: 0, bytes: 0, results: 0, samples: new Float64Array(0), nextSeq: 0, states: null };

  constructor(channels: StepChannels, flagsSlab: SharedArrayBuffer, limits: ResidentLimits, observer: BatchObserver = {}, quiet: QuietReader | null = null) {
    this.#channels = channels;
    this.#quiet = quiet;
    this.#flagsSlab = flagsSlab;
    this.#limits = limits;
    this.#observer = observer;
    this.#watchdog = new Watchdog(limits.stallMs, (asOf) => this.#takeBackOverdue(asOf));
    // The limit is for the threads that take work: each runs its residents beside the main thread.
    const limited = limits.maxLoadPerS > 0;
    this.#load = new StepLoad(limited ? limits.maxLoadPerS * channels.activeLimit : Infinity, limits.loadHoldMs, nowMs());
    // A sample closes with every quiet step taken in (the catch-up counts them): none falls in the next.
    this.#loadTimer = limited
      ? setInterval(() => {
          this.catchUpAll();
          this.#load.close(nowMs());
        }, LOAD_SAMPLE_MS).unref()
      : null;
    // The load's samples catch up as often as this already.
    this.#catchUpTimer = quiet && !(limited && limits.catchUpMs >= LOAD_SAMPLE_MS) ? setInterval(() => this.catchUpAll(), limits.catchUpMs).unref() : null;
    channels.listenResidents(this);
  }

  get minWaitMs(): number {
    return this.#limits.minWaitMs;
  }

  /** A step producer's step was taken in (resident or not): what the load is counted from. */
  stepTaken(): void {
    this.#load.taken();
  }

  /** Step producers' steps a second, over the load's last sample (pool/step-load.ts). */
  get loadPerS(): number {
    return this.#load.perS;
  }

  /** The load allows a producer to be made resident (STEP_RESIDENTS_MAX_LOAD). */
  get welcome(): boolean {
    return !this.#closed && this.#load.welcome;
  }

  /** The load passed STEP_RESIDENTS_MAX_LOAD by a quarter: residents go back to the main thread's path. */
  get crowded(): boolean {
    return this.#load.crowded;
  }

  /** Residents kept by the step threads. */
  get count(): number {
    return this.#byToken.size;
  }

  /**
   * Hands a step producer to a step thread, its first step there due at `dueAt`: `step` carries its
   * session's description, states and next seq, with its consumer lent (`consumeAfter`). Null when
   * no thread has room.
   */
  adopt(step: ProduceStepTask, dueAt: number, rateSlackMs: number, handler: ResidentHandler): ResidentRun | null {
    if (!this.welcome) return null;
    const place = this.#channels.placeResident(this.#limits.perThread);
    if (!place) return null;
    const token = this.#nextToken;
    this.#nextToken = token >= 0x7fff_ffff ? 1 : token + 1;
    const flags = flagsAt(this.#flagsSlab, step.flagsSlot);
    resetQuiet(flags);
    Atomics.store(flags.ints, FLAG.RESIDENT, token);
    const r = new Resident(token, place, flags, handler, rateSlackMs, dueAt, this, step.flagsSlot);
    place.residents++;
    this.totals.adopted++;
    this.#byToken.set(token, r);
    this.#channels.postResident(place, { kind: 'adopt', token, step, dueAt, rateSlackMs });
    this.#watchdog.arm();
    return r;
  }

  answered(place: ResidentPlace, answers: ResidentAnswers): void {
    const [meta, packed] = answers.residents;
    const outcomes = unpackBatch(packed).outcomes;
    let thrown: { error: unknown } | null = null;
    for (let i = 0; i * RESIDENT_META < meta.length; i++) {
      const at = i * RESIDENT_META;
      const r = this.#byToken.get(meta[at]!);
      if (!r || r.place !== place) continue; // taken back: its answer no longer counts
      const end = meta[at + 1]!;
      const dueAt = meta[at + 2]!;
      const stepNo = meta[at + 3]!;
      const o = outcomes[i] ?? null;
      const ran = end === RESIDENT_END.RAN && o !== null && 'ok' in o;
      try {
        // The quiet steps before this answer come first; with none run, it goes on from theirs.
        this.#catchUp(r, o === null);
        if (stepNo > r.knownStep) r.knownStep = stepNo;
        if (o !== null && stepNo > r.statesStep) r.statesStep = stepNo;
        if (ran) {
          const res = o.ok as ProduceStepResult;
          r.expectedAt = nextStepDue(dueAt, nowMs(), res.delayMs, r.rateSlackMs);
          r.handler.ran(res, dueAt);
        } else {
          this.#end(r);
          if (o && 'thrown' in o) r.handler.ended(null, dueAt, new StepThrew(o.thrown));
          else r.handler.ended(o ? (o.ok as ProduceStepResult) : null, dueAt);
        }
      } catch (err) {
        // A bug on one session's path must not leave the others of this message unheard.
        thrown ??= { error: err };
      } finally {
        // Taken in (or failed in the taking): its next step may run.
        if (ran) ackAnswer(r.flags, stepNo);
      }
    }
    if (thrown) {
      const { error } = thrown;
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  gone(place: ResidentPlace, err: unknown, endedByUs: boolean): void {
    const closed = err instanceof PoolClosedError;
    let rolledBack = 0;
    // #end deletes the one at hand: a Map's iteration goes on past it.
    for (const r of this.#byToken.values()) {
      if (r.place !== place) continue;
      this.#end(r);
      if (closed) {
        // The pool closes (its sessions were stopped first): whatever was on its way fails.
        endResidency(r.flags, r.token);
        queueMicrotask(() => r.handler.ended(null, r.expectedAt, err));
        continue;
      }
      // The resident whose step ran when its thread died, or that the thread was ended for,
      // fails, as a batch's running step does; one whose step ran when its thread was ended for
      // another (a job's, or a resident's that had just finished) goes on like the rest.
      if (residentRunning(r.flags, r.token) && (!endedByUs || r.aborted || r.timedOut || quietTorn(r.flags))) {
        // (A thread ended while it published a quiet step leaves no state to go on from: it fails too.)
        const why = r.aborted ?? (r.timedOut ? new StepTimedOutError(this.#limits.timeoutMs) : err);
        // What its quiet steps before this one sent is counted (none of them is half written).
        if (!quietTorn(r.flags)) this.#catchUpAtEnd(r);
        queueMicrotask(() => r.handler.ended(null, r.expectedAt, why));
        continue;
      }
      // Its thread is gone: nothing of it runs. An answer it posted may have been lost with the
      // thread: its unpublished writes are cut by its next writer.
      Atomics.store(r.flags.ints, FLAG.RESIDENT, 0);
      markRolledBack(r.flags);
      rolledBack++;
      const failed = this.#catchUpAtEnd(r);
      queueMicrotask(() => r.handler.ended(null, nowMs(), r.aborted ?? failed));
    }
    place.residents = 0;
    if (rolledBack > 0) {
      this.totals.rolledBack += rolledBack;
      this.#observer.takenBack?.(rolledBack, 'thread_ended');
    }
    this.#disarmIfDone();
  }

  /** A resident's stop was forced: taken back at once, or its thread ended while its step runs. */
  abort(r: Resident, reason: Error): void {
    if (r.done || r.aborted) return;
    r.aborted = reason;
    if (endResidency(r.flags, r.token)) {
      this.#end(r);
      markRolledBack(r.flags);
      this.#catchUpAtEnd(r);
      queueMicrotask(() => r.handler.ended(null, r.expectedAt, reason));
      return;
    }
    // Its step runs: only ending its thread ends it. (Otherwise the thread handed it back, and
    // that answer, on its way, ends it.)
    if (residentRunning(r.flags, r.token)) this.#channels.endThread(r.place, reason);
  }

  /**
   * A resident's session stops. Between its steps it is taken back at once (its thread drops it at
   * its next tick, finding the token gone; answers still on their way are not taken in, and what
   * they wrote is cut): a stop costs no round trip. While its step runs, the thread hands it back
   * with that step's answer. With `waitForAnswer` (its thread sent results whose answer is on its
   * way: STEP_SENDS) it is always handed back by its thread, after that answer.
   */
  release(r: Resident, waitForAnswer = false, ending = false): void {
    if (r.done) return;
    if (!waitForAnswer && endResidency(r.flags, r.token)) {
      this.#end(r);
      markRolledBack(r.flags);
      const failed = this.#catchUpAtEnd(r, !ending);
      queueMicrotask(() => r.handler.ended(null, r.expectedAt, failed));
      return;
    }
    this.#channels.postResident(r.place, { kind: 'release', token: r.token });
  }

  close(): void {
    this.#closed = true;
    this.#watchdog.close();
    if (this.#loadTimer) clearInterval(this.#loadTimer);
    if (this.#catchUpTimer) clearInterval(this.#catchUpTimer);
  }

  /** Tells `r`'s side what its quiet steps came to since it was last told. */
  catchUp(r: Resident): void {
    if (!r.done) this.#catchUp(r, false);
  }

  /** Tells every resident's side what its quiet steps came to since it was last told (STEP_QUIET_CATCH_UP_MS). */
  catchUpAll(): void {
    let thrown: { error: unknown } | null = null;
    for (const r of this.#byToken.values()) {
      try {
        this.#catchUp(r, false);
      } catch (err) {
        thrown ??= { error: err };
      }
    }
    if (thrown) {
      const { error } = thrown;
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /**
   * Tells `r`'s side what its quiet steps came to since it was last told, if anything; with
   * `states` (its residency ended without an answer, so its thread writes no more), the
   * pipeline's states of the last of them too.
   */
  #catchUp(r: Resident, states: boolean): void {
    const reader = this.#quiet;
    if (!reader) return;
    const last = quietStep(r.flags);
    const news = last > r.knownStep;
    const wantStates = states && last > r.statesStep;
    if (!news && !wantStates) return;
    const a = r.applied;
    const q = this.#told;
    q.steps = q.calls = q.chunks = q.bytes = q.results = 0;
    if (news) {
      const p = this.#read;
      if (!reader.progress(r.flags, p)) {
        // Its thread is in the middle of a write: the next catch-up reads it. At the residency's
        // end no thread writes: a write left half done has no state to go on from.
        if (!wantStates) return;
        throw new Error('its step thread ended while it published a step');
      }
      const n = p.samples - a.samples;
      if (this.#samples.length < n * SAMPLE_FIELDS) this.#samples = new Float64Array(n * SAMPLE_FIELDS);
      reader.takeSamples(r.flags, r.slot, a.samples, p.samples, this.#samples);
      q.steps = p.steps - a.steps;
      q.calls = p.calls - a.calls;
      q.chunks = p.chunks - a.chunks;
      q.bytes = p.bytes - a.bytes;
      q.results = p.results - a.results;
      copyQuietProgress(p, a);
      r.knownStep = p.step;
      if (p.dueAt > r.expectedAt) r.expectedAt = p.dueAt;
      this.#load.taken(q.steps);
      this.totals.quietSteps += q.steps;
    }
    q.samples = this.#samples;
    q.nextSeq = a.nextSeq;
    q.states = null;
    if (wantStates) {
      q.states = reader.states(r.flags, r.slot);
      r.statesStep = last;
    }
    r.handler.quiet(q);
  }

  /**
   * Catches `r` up at the end of its residency, states and all (#catchUp): what went wrong in it
   * (a write its thread left half done, a bug on its session's path) is what its session fails
   * with, never a throw out of the take-back that would leave other residents unheard.
   */
  #catchUpAtEnd(r: Resident, states = true): Error | undefined {
    try {
      this.#catchUp(r, states);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  #end(r: Resident): void {
    r.done = true;
    this.#byToken.delete(r.token);
    r.place.residents = Math.max(0, r.place.residents - 1);
    this.#disarmIfDone();
  }

  /** The watchdog runs while a resident lives or a thread is held. */
  #disarmIfDone(): void {
    if (this.#byToken.size === 0 && !this.#channels.anyStuck()) this.#watchdog.disarm();
  }

  /**
   * Residents whose answer is overdue by STEP_BATCH_STALL_MS: one whose own step runs holds its
   * thread (marked stuck; ended past STEP_TIMEOUT_MS); the others are taken back once overdue by
   * STEP_RESIDENT_ANSWER_MS more, since their thread may be gathering that answer. Judged as of
   * `asOf`, when every answer posted before it was read (pool/watchdog.ts).
   */
  #takeBackOverdue(asOf: number): void {
    const now = nowMs();
    let taken = 0;
    // #end deletes the one at hand: a Map's iteration goes on past it.
    for (const r of this.#byToken.values()) {
      let late = asOf - r.expectedAt;
      if (late < this.#limits.stallMs) continue;
      // Its quiet steps moved its due time on without an answer (pool/quiet-steps.ts). Kept, so
      // that the next passes do not read it again (another core wrote it: each read is a miss).
      if (this.#quiet) {
        const dueAt = quietDueAt(r.flags);
        if (dueAt > r.expectedAt) r.expectedAt = dueAt;
        late = asOf - r.expectedAt;
        if (late < this.#limits.stallMs) continue;
      }
      if (residentRunning(r.flags, r.token)) {
        r.place.stuck = true;
        if (this.#limits.timeoutMs > 0 && !r.timedOut) {
          const began = Math.max(stepStartedAt(r.flags, 'producer'), stepStartedAt(r.flags, 'consumer'));
          if (began > 0 && asOf - began >= this.#limits.timeoutMs) {
            r.timedOut = true;
            this.#observer.timedOut?.();
            this.#channels.endThread(r.place, new StepTimedOutError(this.#limits.timeoutMs));
          }
        }
        continue;
      }
      if (late < this.#limits.stallMs + this.#limits.answerMs) continue;
      if (!endResidency(r.flags, r.token)) continue;
      // Its thread is held (by a batch's step, or is behind): no new resident goes there until
      // it answers again, which it is asked to below.
      r.place.stuck = true;
      this.#end(r);
      markRolledBack(r.flags);
      taken++;
      const failed = this.#catchUpAtEnd(r);
      queueMicrotask(() => r.handler.ended(null, now, failed));
    }
    this.#channels.pingStuck();
    this.#disarmIfDone();
    if (taken > 0) {
      this.totals.takenBack += taken;
      this.#observer.takenBack?.(taken, 'stalled');
    }
  }
}
