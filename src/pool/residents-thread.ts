/**
 * A step thread's resident steps (the main thread's side: pool/residents.ts). A resident is a
 * step producer with its lent consumer that this thread keeps: its schedule, its states and next
 * seq live here, and every step due at a tick of this thread's own timer runs without the main
 * thread posting it. The answers of a tick go back in one message (in parts while the tick runs
 * longer than STEP_BATCH_ANSWER_US), packed as a batch's; the main thread publishes each step's
 * progress and sends its results, as for any step.
 *
 * A resident runs its next step only once the main thread published its last one (a log's writer
 * works from its published end: spool/progress.ts). Each step is claimed through the session's
 * token (pool/flags.ts FLAG.RESIDENT), so the main thread can take a resident back without this
 * thread while it runs another's step. The thread hands a resident back, with the answer of the
 * step that ran or with none, when its session stops or pauses, fails, is done, wants no wait, or
 * its consumer was slow; the main thread's path goes on from there.
 */
import { FLAG, claimResident, endResidency, flagsAt, isStopRequested, nowMs, unclaimResident, type SessionFlags } from './flags.js';
import { SAMPLE, answerTaken, followsDelivered, noQuietProgress, type QuietProgress, type QuietWriter } from './quiet-steps.js';
import { publishChunks, publishConsumed, publishResults } from '../spool/progress.js';
import { packBatch } from './answer-codec.js';
import { consumerLendable, nextStepDue } from '../sessions/pacing.js';
import { TimerWheel, type WheelGranularity, type WheelTimer } from '../sessions/timer-wheel.js';
import { RESIDENT_END, type ProduceStepResult, type ProduceStepTask, type ResidentAdopt, type ResidentAnswers, type ResidentRelease, type StepOutcome, type TaskError } from './messages.js';

interface Resident {
  readonly token: number;
  readonly step: ProduceStepTask;
  readonly flags: SessionFlags;
  readonly rateSlackMs: number;
  dueAt: number;
  /** The last chunk its steps wrote: its next step waits until the main thread published it as consumed. */
  lastSeq: number;
  /** Released while its step ran (an awaiting pipeline): that step's answer is its last. */
  released: boolean;
  /** Handed back, released or taken back: a tick that still lists it skips it. */
  gone: boolean;
  readonly timer: WheelTimer;
  /** Puts it on the list of the due (made once: the wheel calls it at every due time). */
  readonly fire: () => void;
  /** What it adds to its thread's steps per ms: one step per wait its last step asked for (0 before its first). */
  perMs: number;
  /** Its steps run here, numbered from 1; the last one answered (its next step waits until the main thread took that answer in). */
  stepNo: number;
  answered: number;
  /** What its quiet steps came to (pool/quiet-steps.ts): the totals the thread publishes. */
  readonly quiet: QuietProgress;
}

/**
 * How a step thread groups its residents' waits (config.ts names the variables). Each wake-up of
 * the thread costs about as much as a step (the timer, the poll, the pass over the due): while
 * its residents fall due fewer than `steps` to a tick, their waits end on coarser boundaries, the
 * tick doubled as far as the slack allows, so that about `steps` run per wake-up
 * (docs/PERFORMANCE.md, "Grouping the residents' waits"). A step producer keeps its rate
 * whatever the lateness (sessions/pacing.ts).
 */
export interface ResidentGrouping {
  /** About this many residents to a wake-up (STEP_RESIDENT_GROUP_STEPS; 0: every wait ends on the tick). */
  steps: number;
  /** A wait may end up to this share of its length late, in percent (STEP_RESIDENT_SLACK_PERCENT). */
  slackPercent: number;
  /** But never more than this late, ms (STEP_TIMER_MAX_SLACK_MS). */
  maxSlackMs: number;
}

/** Every wait on the tick. */
export const NO_GROUPING: ResidentGrouping = Object.freeze({ steps: 0, slackPercent: 0, maxSlackMs: 0 });

/**
 * The most a resident's wait may end late, ms, for a thread whose residents fall due `stepsPerMs`
 * a ms: the tick, doubled while a group of that span would hold fewer than `grouping.steps`
 * and its double stays within `grouping.maxSlackMs`. 0 when no slack is wanted (the tick's own).
 */
export function groupSlackMs(stepsPerMs: number, tickMs: number, grouping: ResidentGrouping): number {
  let span = Math.max(1, tickMs);
  while (span * 2 <= grouping.maxSlackMs && stepsPerMs * span < grouping.steps) span *= 2;
  return span > tickMs ? span : 0;
}

export type StepRunner = (step: ProduceStepTask, flags: SessionFlags) => Promise<ProduceStepResult>;

export class ThreadResidents {
  readonly #byToken = new Map<number, Resident>();
  /** Every resident's wait for its next step: one timer, groups on the tick (sessions/timer-wheel.ts). */
  readonly #wheel: TimerWheel;
  /** Residents due, in the order they fell due: run one after another, their answers posted together. */
  readonly #due: Resident[] = [];
  #running = false;
  #closed = false;
  /** An answer gathered is waited for: the next flush posts at once. */
  #urgent = false;
  /** The gathering's timer (STEP_RESIDENT_ANSWER_MS), while answers wait. */
  #gather: NodeJS.Timeout | null = null;
  /** When the first answer now waiting was gathered (epoch ms). */
  #gatherFrom = 0;
  /** The flush after this turn's releases (#flushAfterTurn), while one is due. */
  #afterTurn: NodeJS.Immediate | null = null;
  readonly #meta: number[] = [];
  readonly #outcomes: Array<StepOutcome | null> = [];
  /** The residents' steps per ms, as their last steps asked (the sum of their `perMs`). */
  #stepsPerMs = 0;
  /** The granularity of the next wait (#wait sets its slack): one object, reused. */
  readonly #waitGranularity: WheelGranularity;

  constructor(
    private readonly flagsSlab: SharedArrayBuffer,
    private readonly tickMs: number,
    private readonly answerUs: number,
    /** How long answers whose results this thread sent itself are gathered before they are posted, ms (0: none). */
    private readonly gatherMs: number,
    /** The most answers one message carries: a larger one holds the main thread that much longer. */
    private readonly answersMax: number,
    private readonly grouping: ResidentGrouping,
    private readonly runStep: StepRunner,
    private readonly post: (answers: ResidentAnswers, transfer: ArrayBuffer[]) => void,
    private readonly toTaskError: (err: unknown) => TaskError,
    /** Writes the steps that need no answer (pool/quiet-steps.ts); null: every step is answered. */
    private readonly quietWriter: QuietWriter | null = null,
  ) {
    this.#wheel = new TimerWheel({ tickMs, slackPercent: 0, maxSlackMs: 0 });
    this.#waitGranularity = { tickMs, slackPercent: grouping.slackPercent, maxSlackMs: 0 };
  }

  handle(message: ResidentAdopt | ResidentRelease): void {
    if (message.kind === 'adopt') this.#adopt(message);
    else this.#release(message);
  }

  /** The channel closed (the pool closes): nothing more is stepped or posted. */
  close(): void {
    this.#closed = true;
    if (this.#gather) clearTimeout(this.#gather);
    if (this.#afterTurn) clearImmediate(this.#afterTurn);
    this.#gather = null;
    this.#afterTurn = null;
    this.#wheel.close();
    this.#byToken.clear();
  }

  #adopt(m: ResidentAdopt): void {
    const r: Resident = {
      token: m.token,
      step: m.step,
      flags: flagsAt(this.flagsSlab, m.step.flagsSlot),
      rateSlackMs: m.rateSlackMs,
      dueAt: m.dueAt,
      lastSeq: m.step.nextSeq - 1,
      released: false,
      gone: false,
      timer: { fn: null, due: 0 },
      fire: () => this.#fell(r),
      perMs: 0,
      stepNo: 0,
      answered: 0,
      quiet: noQuietProgress(),
    };
    this.#byToken.set(r.token, r);
    this.#wait(r, r.dueAt - nowMs());
  }

  /** Waits `delayMs` for `r`'s next step, grouped with the others' as ResidentGrouping says. */
  #wait(r: Resident, delayMs: number): void {
    this.#waitGranularity.maxSlackMs = groupSlackMs(this.#stepsPerMs, this.tickMs, this.grouping);
    this.#wheel.schedule(r.fire, delayMs, r.timer, this.#waitGranularity);
  }

  /** Sets what `r` adds to the thread's steps per ms (0: it left). */
  #setRate(r: Resident, perMs: number): void {
    this.#stepsPerMs += perMs - r.perMs;
    r.perMs = perMs;
    // Sums of fractions drift: with no resident left it is 0 again.
    if (this.#byToken.size === 0 || this.#stepsPerMs < 0) this.#stepsPerMs = 0;
  }

  /** The main thread lets go: dropped now and said so, or after the step that runs for it now. */
  #release(m: ResidentRelease): void {
    const r = this.#byToken.get(m.token);
    if (!r) {
      // Handed back already (that answer was its last), or the main thread asking whether this
      // thread answers at all (token 0: residents.ts marked it stuck): an empty answer says so.
      this.#post(true);
      return;
    }
    if (Atomics.load(r.flags.ints, FLAG.RESIDENT) === -r.token) {
      r.released = true;
      return;
    }
    this.#giveBack(r, null, RESIDENT_END.RETURNED);
    this.#flushAfterTurn();
  }

  /**
   * Posts what was gathered once this turn's messages are all read: the releases of a storm of
   * STOPs arrive together, and their hand-backs go back in one message, not one each.
   */
  #flushAfterTurn(): void {
    this.#afterTurn ??= setImmediate(() => {
      this.#afterTurn = null;
      this.#flush();
    });
  }

  /** A resident fell due: it runs after those already due, in this turn or in the run under way. */
  #fell(r: Resident): void {
    this.#due.push(r);
    if (this.#running) return;
    this.#running = true;
    // After the wheel has called every resident of the group: they run, and answer, together.
    queueMicrotask(() => void this.#runDue());
  }

  async #runDue(): Promise<void> {
    const partMs = this.answerUs / 1000;
    let partFrom = nowMs();
    try {
      // Residents falling due while an awaiting step runs join the list and run in this pass.
      for (let i = 0; i < this.#due.length; i++) {
        const r = this.#due[i]!;
        if (r.gone || this.#closed) continue;
        await this.#step(r);
        // A full message goes at once (#flush posts it), as does a part past STEP_BATCH_ANSWER_US.
        if (this.#outcomes.length >= this.answersMax || (partMs > 0 && this.#meta.length > 0 && nowMs() - partFrom >= partMs)) {
          this.#flush();
          partFrom = nowMs();
        }
      }
    } finally {
      this.#due.length = 0;
      this.#running = false;
      this.#flush();
    }
  }

  async #step(r: Resident): Promise<void> {
    const ints = r.flags.ints;
    // Taken back by the main thread (its stop, or overdue): dropped, without a word.
    if (Atomics.load(ints, FLAG.RESIDENT) !== r.token) return this.#drop(r);
    if (isStopRequested(r.flags) || Atomics.load(ints, FLAG.PAUSE_PRODUCER) === 1 || Atomics.load(ints, FLAG.PAUSE_CONSUMER) === 1) {
      return this.#giveBack(r, null, RESIDENT_END.RETURNED);
    }
    // Its last step is not published yet, or its last answer not taken in (the main thread is
    // behind): look again next tick.
    if (Atomics.load(ints, FLAG.CONSUMED) < r.lastSeq || (r.answered > 0 && !answerTaken(r.flags, r.answered))) {
      this.#wheel.schedule(r.fire, this.tickMs, r.timer);
      return;
    }
    if (!claimResident(r.flags, r.token)) return this.#drop(r);
    const startedAt = nowMs();
    let outcome: StepOutcome;
    try {
      const ok = await this.runStep(r.step, r.flags);
      ok.timing = { startedAt, finishedAt: nowMs() };
      outcome = { ok };
    } catch (err) {
      outcome = { thrown: this.toTaskError(err) };
    }
    r.stepNo++;
    // Still claimed: published before the main thread may take it back.
    if ('ok' in outcome && this.#quietly(r, outcome.ok as ProduceStepResult)) return;
    unclaimResident(r.flags, r.token);
    const due = r.dueAt;
    if (!('ok' in outcome) || !this.#staysAfter(r, outcome.ok as ProduceStepResult)) return this.#giveBack(r, outcome, RESIDENT_END.HANDED_BACK);
    const res = outcome.ok as ProduceStepResult;
    const step = r.step;
    step.state = res.state;
    step.consumerState = res.consumed!.state;
    const last = res.chunks[res.chunks.length - 1];
    if (last) {
      step.nextSeq = last.seq + 1;
      r.lastSeq = last.seq;
    }
    r.dueAt = nextStepDue(due, nowMs(), res.delayMs, r.rateSlackMs);
    r.answered = r.stepNo;
    this.#answer(r, RESIDENT_END.RAN, due, outcome);
    this.#setRate(r, 1 / res.delayMs);
    this.#wait(r, r.dueAt - nowMs());
  }

  /**
   * Publishes a step that needs no answer (pool/quiet-steps.ts) and waits for the next; false when
   * it needs one. Called while the step's claim is held; unclaims when it publishes.
   */
  #quietly(r: Resident, res: ProduceStepResult): boolean {
    const q = this.quietWriter;
    const c = res.consumed;
    if (!q || !c?.sentAll || !this.#staysAfter(r, res)) return false;
    const n = res.chunks.length;
    const cl = res.chunkLog;
    const rl = c.resultLog;
    const rm = c.readMark;
    if (n === 0 || c.results.length !== n || !cl || !rl || !rm || rm.left.length > 0) return false;
    // A new segment is the main thread's to follow (it holds the open one's file).
    const ints = r.flags.ints;
    if (cl.segment !== ints[FLAG.CHUNK_SEGMENT] || rl.segment !== ints[FLAG.RESULT_SEGMENT]) return false;
    // Nothing of the session waits on the main thread to be sent before these.
    if (!followsDelivered(r.flags, res.chunks[0]!.seq, r.quiet.nextSeq - 1)) return false;
    if (!q.hasRoom(r.flags, r.quiet.samples, n) || !q.stage(res.state, c.state)) return false;
    const due = r.dueAt;
    const next = nextStepDue(due, nowMs(), res.delayMs, r.rateSlackMs);
    const p = r.quiet;
    let bytes = 0;
    for (const chunk of res.chunks) bytes += chunk.sizeBytes;
    p.step = r.stepNo;
    p.nextSeq = res.chunks[n - 1]!.seq + 1;
    p.dueAt = next;
    p.steps++;
    p.chunks += n;
    p.bytes += bytes;
    p.results += n;
    p.calls += res.calls;
    p.samples += n;
    const t = res.timing;
    q.write(
      r.flags,
      r.step.flagsSlot,
      p,
      n,
      (i, into, at) => {
        const chunk = res.chunks[i]!;
        const result = c.results[i]!;
        into[at + SAMPLE.LATENCY] = result.doneAt - chunk.producedAt;
        into[at + SAMPLE.PICKUP] = result.takenAt - chunk.producedAt;
        into[at + SAMPLE.CONSUMER_RUN] = result.doneAt - result.takenAt;
        into[at + SAMPLE.STEP_WAIT] = i === 0 && t ? t.startedAt - due : NaN;
        into[at + SAMPLE.STEP_RUN] = i === 0 && t ? t.finishedAt - t.startedAt : NaN;
      },
      () => {
        publishChunks(r.flags, cl);
        publishResults(r.flags, rl);
        publishConsumed(r.flags, rm);
      },
    );
    unclaimResident(r.flags, r.token);
    const step = r.step;
    step.state = res.state;
    step.consumerState = c.state;
    step.nextSeq = p.nextSeq;
    r.lastSeq = p.nextSeq - 1;
    r.dueAt = next;
    this.#setRate(r, 1 / res.delayMs);
    this.#wait(r, r.dueAt - nowMs());
    return true;
  }

  /** Whether a resident stays after its step's answer `res`, or goes back to the main thread's path with it. */
  #staysAfter(r: Resident, res: ProduceStepResult): boolean {
    const consumed = res.consumed;
    if (r.released || res.skipped || res.error || res.done || res.delayMs <= 0 || !consumed || consumed.error || consumed.skipped) return false;
    return consumed.results.length === res.chunks.length && consumerLendable(r.flags);
  }

  /** Hands `r` back with `outcome` (or none), unless the main thread took it back first. */
  #giveBack(r: Resident, outcome: StepOutcome | null, end: number): void {
    if (!endResidency(r.flags, r.token)) return this.#drop(r);
    this.#drop(r);
    this.#answer(r, end, r.dueAt, outcome);
  }

  #drop(r: Resident): void {
    r.gone = true;
    this.#wheel.cancel(r.timer);
    this.#byToken.delete(r.token);
    this.#setRate(r, 0);
  }

  #answer(r: Resident, end: number, dueAt: number, outcome: StepOutcome | null): void {
    if (this.#meta.length === 0) this.#gatherFrom = nowMs();
    this.#meta.push(r.token, end, dueAt, r.stepNo);
    this.#outcomes.push(outcome);
    // Only a step whose results all left by this thread, and that stays with its next step not due
    // within the gathering, may wait: anything else (a hand-back, a result the main thread is to
    // send) is waited for.
    const ok = end === RESIDENT_END.RAN && outcome && 'ok' in outcome ? (outcome.ok as ProduceStepResult) : null;
    if (!ok?.consumed?.sentAll || r.dueAt - nowMs() <= this.gatherMs) this.#urgent = true;
  }

  /**
   * Posts the answers gathered: at once when one is waited for (or gathering is off) or when they
   * fill a message (STEP_RESIDENT_ANSWER_MAX), else once STEP_RESIDENT_ANSWER_MS passed since the
   * first of them. With STEP_SENDS a result reaches its client without its answer, so fewer,
   * fuller answers cost the main thread fewer wake-ups (docs/PERFORMANCE.md, "Fewer, fuller
   * answers").
   */
  #flush(): void {
    if (this.#meta.length === 0 || this.#closed) return;
    // Timed from the first answer gathered, not from its timer, which a long tick keeps from firing:
    // the main thread takes a resident back whose answer is STEP_BATCH_STALL_MS + STEP_RESIDENT_ANSWER_MS late.
    if (this.#urgent || this.gatherMs <= 0 || this.#outcomes.length >= this.answersMax || nowMs() - this.#gatherFrom >= this.gatherMs) return this.#post(false);
    this.#gather ??= setTimeout(() => {
      this.#gather = null;
      this.#post(false);
    }, this.gatherMs);
  }

  /** Posts the answers gathered now: this thread is about to run a job, which may hold it longer than the gathering. */
  postGathered(): void {
    if (this.#meta.length > 0 && !this.#closed) this.#post(false);
  }

  /** Posts the answers gathered (an empty message too when `always`). */
  #post(always: boolean): void {
    this.#urgent = false;
    if (this.#gather) clearTimeout(this.#gather);
    this.#gather = null;
    if (this.#closed || (this.#meta.length === 0 && !always)) return;
    const meta = new Float64Array(this.#meta);
    const packed = packBatch(this.#outcomes, 0, this.#outcomes.length, null);
    this.#meta.length = 0;
    this.#outcomes.length = 0;
    this.post({ residents: [meta, packed] }, [meta.buffer, packed[0].buffer as ArrayBuffer]);
  }
}
