import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { FLAG, isStopRequested, nowMs, requestStop, runningThread, setPaused, stepStartedAt, type SessionFlags } from '../pool/flags.js';
import type { LogPolicy } from '../spool/appender.js';
import { readLogRange } from '../spool/log.js';
import { LogFiles, type StepsGate } from '../spool/log-files.js';
import type { HeldFilesBudget } from '../spool/held-files.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { StepBatcher, StepDone, StepRun } from '../pool/step-batcher.js';
import type { TimerWheel, WheelTimer } from './timer-wheel.js';
import v8 from 'node:v8';
import type { ChunkRecord, ConsumeStepTask, ProduceStepTask, ResultRecord, StepSessionRef, TaskError, TaskSession } from '../pool/messages.js';
import type { PipelineEntry } from '../pipelines/catalog.js';
import { tandemError, type TandemError } from '../errors.js';
import { createSpool } from './spool.js';
import type { SpoolRemover } from './spool-remover.js';
import type { QuietSteps, ResidentHandler, ResidentRun, ResidentSteps } from '../pool/residents.js';
import { SAMPLE, SAMPLE_FIELDS, markDelivered } from '../pool/quiet-steps.js';
import { LoopConsumer, LoopProducer, StepConsumer, StepProducer, type Side, type SideHost, type SideName } from './sides.js';
import { LatencyWindow } from './latency-window.js';
import { ClientProducer } from './client-producer.js';
import { SessionSequence } from './sequence.js';

export type SessionState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';
/** Why a session ended. */
/** `instance_lost`: its instance stopped heart-beating in the cluster, or found itself declared lost (src/cluster/lease.ts). */
export type EndReason = 'client' | 'admin' | 'disconnect' | 'failed' | 'shutdown' | 'completed' | 'instance_lost';

export interface DeliveredResult {
  seq: number;
  /** The result as JSON text. */
  json: string;
  producedAt: number;
}

/**
 * Where a session's output goes: the WebSocket connection attached to it. A session outlives a
 * dropped connection for the resume window, so its sink can be detached and another attached.
 */
export interface SessionSink {
  /**
   * Called in chunk order, once per chunk (again for replays after a resume). Returns true when a
   * step thread had written it into the client's socket already (STEP_SENDS).
   */
  result(session: Session, result: DeliveredResult): boolean | void;
  /** False while the client's send buffer is over its threshold: results wait. */
  writable(): boolean;
  /** The pipeline failed; called once, before `ended`. */
  failed(session: Session, error: TandemError): void;
  /**
   * Both sides are idle: no thread runs pipeline code for the session and nothing more is sent.
   * The spool's removal and the registry's bookkeeping (state, `endedAt`, `onEnded`) follow
   * right after, so they may not be done yet when this is called.
   */
  ended(session: Session, summary: SessionSummary): void;
  /** This sink was attached by RESUME, `after` its last received seq; replays follow. */
  resumed?(session: Session, after: number): void;
  /** Another connection resumed the session: this one no longer receives anything. */
  superseded?(session: Session): void;
  /**
   * The last result seq this client was sent, by either thread (STEP_SENDS): it may be ahead of
   * what the session counts as delivered (a step thread wrote results whose answer has not arrived).
   */
  sentThrough?(): number;
  /** From now on no step thread writes to this client; returns sentThrough(). */
  takeBackSends?(): number;
  /** A step thread's quiet steps sent this client `count` results (pool/quiet-steps.ts), counted now. */
  countQuietResults?(count: number): void;
}

/** Hooks for metrics; every method optional. Times are in ms. */
export interface SessionObserver {
  /** The spool exists and both sides were started. */
  sessionStarted?(session: Session): void;
  chunkProduced?(session: Session, chunk: ChunkRecord): void;
  /** The consumer returned these results (possibly out of delivery order). */
  resultsConsumed?(session: Session, results: readonly ResultRecord[]): void;
  /**
   * A result was handed to the sink. `latencyMs`: chunk written → result sent;
   * `pickupMs`: chunk written → the consumer began on it.
   */
  resultDelivered?(session: Session, latencyMs: number, pickupMs: number): void;
  /**
   * A resident's quiet steps (pool/quiet-steps.ts) wrote, consumed and delivered `q.chunks` chunks
   * (`q.bytes` bytes), their samples in `q.samples` (SAMPLE's five numbers a result); their
   * producer's timings also come to taskTimed, their latencies to the session's window.
   */
  quietSteps?(session: Session, q: QuietSteps): void;
  /** A pool task of one side returned: time queued for a thread, time run on it. */
  taskTimed?(session: Session, side: SideName, shape: 'step' | 'loop', waitMs: number, runMs: number): void;
  sessionEnded?(session: Session, summary: SessionSummary): void;
}

export interface SessionSummary {
  session: string;
  reason: EndReason;
  /** Results delivered to the client. */
  chunks: number;
  produced: number;
  /** True when a side had to be terminated after the grace period. */
  forced: boolean;
  stopMs: number;
  error: string | null;
}

export interface SessionInit {
  id: string;
  entry: PipelineEntry;
  url: string;
  options: Record<string, unknown>;
  input: unknown;
  /** Set for a session started with url `client:` (the client is the producer): a frame's length is a multiple of it. */
  clientSampleBytes: number | null;
  keep: boolean;
  clientAddress: string | null;
  spoolDir: string;
  pool: WorkerPool;
  /** Runs steps, batched across sessions. */
  steps: StepBatcher;
  /** Keeps step producers on step threads (STEP_RESIDENTS); null when off. */
  residents: ResidentSteps | null;
  /** The descriptors the service may hold open for sessions' logs (spool/held-files.ts). */
  heldFiles: HeldFilesBudget;
  /** Removes the spool folder once the session ended (on a pool thread, batched with others). */
  spools: SpoolRemover;
  /** Its zeroed slot of the flags slab (given back by the registry once the session ended). */
  flags: { slot: number; flags: SessionFlags };
  /** The one timer of every step side's waits. */
  timers: TimerWheel;
  sink: SessionSink;
  /**
   * Called once when nothing of the session runs any more, right before its client is told
   * `stopped`: what it held for admission (loop threads, its place under MAX_SESSIONS) is free
   * from here, so a START sent after that `stopped` is admitted.
   */
  onReleased(session: Session): void;
  /** Called once when the session has ended (its spool is gone), after the sink heard of it. */
  onEnded(session: Session): void;
  observer: SessionObserver;
  logger: Logger;
  batchMax: number;
  stopGraceMs: number;
  flow: FlowLimits;
  log: LogPolicy;
  /** Longest burst of a step producer with nothing to wait for (chunks, ms); lateness its rate absorbs (ms). */
  burst: { maxChunks: number; maxMs: number; rateSlackMs: number };
}

/** Limits of a session's flow (see config.ts for the variables and defaults). */
export interface FlowLimits {
  /** Chunks waiting on disk before the producer is paused. */
  spoolQuotaChunks: number;
  /** Bytes waiting on disk before the producer is paused. */
  spoolQuotaBytes: number;
  /** How long a session waits for RESUME after its connection dropped, ms (0 = ends at once). */
  resumeGraceMs: number;
}

/** How often a blocked client's send buffer is checked for room, ms. */
const DRAIN_POLL_MS = 20;
/** How often a stop past its grace looks again at a side busy with nothing running on a thread. */
const STOP_RECHECK_MS = 10;

/**
 * The longest a stop waits for its sides: `graceMs` for code still running on a thread, twice
 * that for a step that has not begun (or whose answer is not handled) by then.
 */
export function stopBoundMs(graceMs: number): number {
  return 2 * graceMs;
}

/**
 * One client's producer + consumer pair, from START to the moment nothing of it remains.
 * Its lifecycle is the one `state` field: starting → running → stopping → stopped | failed.
 * `stop()` is idempotent and bounded: cooperative first (shared flag), forced after the grace
 * period. Sequence numbers live in `seq` (sequence.ts); this class moves records between the
 * pool, the sequence and the client.
 */
export class Session implements SideHost {
  readonly id: string;
  readonly entry: PipelineEntry;
  readonly url: string;
  readonly options: Record<string, unknown>;
  readonly keep: boolean;
  readonly clientAddress: string | null;
  readonly spoolDir: string;
  readonly createdAt = Date.now();
  startedAt: number | null = null;
  endedAt: number | null = null;
  #state: SessionState = 'starting';
  endReason: EndReason | null = null;
  error: string | null = null;
  readonly pool: WorkerPool;
  /** The session's slot in the flags slab: its tasks name it. */
  readonly flagsSlot: number;
  #flags: SessionFlags;
  readonly producer: Side;
  readonly consumer: Side;
  readonly latency = new LatencyWindow();
  /** What was produced, consumed, delivered; what waits; whether it is complete. */
  readonly seq = new SessionSequence();
  summary: SessionSummary | null = null;
  /** Shown once, in `started`: only its holder may RESUME this session. */
  readonly resumeSecret = randomBytes(18).toString('base64url');

  /** Everything the session was made with but its sink: an ended session kept for inspect must not hold its connection. */
  readonly #init: Omit<SessionInit, 'sink'>;
  readonly #task: TaskSession;
  readonly #stepRef: StepSessionRef;
  /** The spool folder's creation: a stop during start waits for it, so it can remove it. */
  #spoolReady: Promise<void> | null = null;
  /** The log segments the main thread holds open for the steps. */
  #files: LogFiles | null = null;
  #stopping: Promise<SessionSummary> | null = null;
  /** Set while a stop waits for events a returned loop posted: called on each chunk or result. */
  #onLateEvent: (() => void) | null = null;
  #sink: SessionSink | null;
  /** A RESUME reading its replay from disk: results wait until it is sent. */
  #replaying = false;
  /** The last result seq a client no longer attached was sent, by either thread (STEP_SENDS: see attach). */
  #lostSent = 0;
  /** The attached client has every result up to this seq (its RESUME's `after`): those are not sent again. */
  #clientHas = 0;
  #detachTimer: NodeJS.Timeout | null = null;
  #drainTimer: NodeJS.Timeout | null = null;

  constructor(init: SessionInit) {
    const { sink, ...rest } = init;
    this.#init = rest;
    this.id = init.id;
    this.entry = init.entry;
    this.url = init.url;
    this.options = init.options;
    this.keep = init.keep;
    this.clientAddress = init.clientAddress;
    this.spoolDir = init.spoolDir;
    this.pool = init.pool;
    this.#sink = sink;
    this.#flags = init.flags.flags;
    this.flagsSlot = init.flags.slot;
    // The consumer starts reading at the segment the producer's first chunk begins.
    this.flags.ints[FLAG.READ_SEGMENT] = 1;
    this.#task = {
      module: init.entry.module,
      sessionId: init.id,
      flagsSlot: init.flags.slot,
      spoolDir: init.spoolDir,
      url: init.url,
      input: init.input,
      options: init.options,
      keep: init.keep,
      log: init.log,
      spoolQuotaChunks: init.flow.spoolQuotaChunks,
      burstMaxChunks: init.burst.maxChunks,
      burstMaxMs: init.burst.maxMs,
    };
    // An exact-size copy: a Buffer from a pool would carry its whole pool slab into every message.
    this.#stepRef = { sessionId: init.id, flagsSlot: init.flags.slot, session: new Uint8Array(v8.serialize(this.#task)) };
    if (init.clientSampleBytes !== null) this.producer = new ClientProducer(this, init.clientSampleBytes);
    else this.producer = init.entry.producerShape === 'step' ? new StepProducer(this, init.burst.rateSlackMs) : new LoopProducer(this);
    this.consumer = init.entry.consumerShape === 'step' ? new StepConsumer(this, init.batchMax) : new LoopConsumer(this);
    if (this.producer instanceof StepProducer && this.consumer instanceof StepConsumer) this.producer.pairWith(this.consumer);
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The memory the session shares with its threads (a private copy once it has ended and given its slot back). */
  get flags(): SessionFlags {
    return this.#flags;
  }

  /** True once the session has ended: stopped or failed, nothing of it left. */
  get ended(): boolean {
    return this.#state === 'stopped' || this.#state === 'failed';
  }

  /** The producer when the client is it (url `client:`), else null. */
  get clientProducer(): ClientProducer | null {
    return this.producer instanceof ClientProducer ? this.producer : null;
  }

  // Read-only views of the sequence, for inspect and metrics.
  get produced(): number {
    return this.seq.produced;
  }
  get bytesProduced(): number {
    return this.seq.bytesProduced;
  }
  get consumed(): number {
    return this.seq.consumed;
  }
  get delivered(): number {
    return this.seq.delivered;
  }
  get spooledChunks(): number {
    return this.seq.spooledChunks;
  }
  get spooledBytes(): number {
    return this.seq.spooledBytes;
  }

  async start(): Promise<void> {
    const stepLogs = [...(this.producer.shape === 'step' ? (['chunks'] as const) : []), ...(this.consumer.shape === 'step' ? (['results'] as const) : [])];
    // Only step sides write through held descriptors: the session may give them back while neither
    // runs a step, and no thread its flags still name (one STEP_TIMEOUT_MS terminated, stuck in a
    // native call) could still write through them.
    const steps: StepsGate = {
      idle: () =>
        !(this.producer.shape === 'step' && this.producer.busy) &&
        !(this.consumer.shape === 'step' && this.consumer.busy) &&
        !this.#init.pool.running(this.#threadsNamed()),
      // A resident producer is always on its way: it leaves its thread for its next step, and the
      // budget's next try finds it between steps.
      pause: () => {
        if (this.producer instanceof StepProducer) this.producer.leaveThread();
      },
    };
    const files = (this.#files = new LogFiles(this.spoolDir, this.flags, this.#init.heldFiles, stepLogs, steps));
    this.#spoolReady = createSpool(this.spoolDir, this.keep).then(() => files.open());
    await this.#spoolReady;
    if (this.#stopping) return;
    this.#state = 'running';
    this.startedAt = Date.now();
    this.#init.observer.sessionStarted?.(this);
    this.consumer.start();
    this.producer.start();
  }

  // ---- SideHost ----

  task(): TaskSession {
    return this.#task;
  }

  stepRef(): StepSessionRef {
    return this.#stepRef;
  }

  followSegment(kind: 'chunks' | 'results', segment: number): void {
    this.#files?.follow(kind, segment);
  }

  runStep(task: ProduceStepTask | ConsumeStepTask, done: StepDone): StepRun {
    return this.#init.steps.run(task, done);
  }

  get residentMinMs(): number {
    const residents = this.#init.residents;
    return residents?.welcome ? residents.minWaitMs : Infinity;
  }

  stepTaken(): void {
    this.#init.residents?.stepTaken();
  }

  get residentsCrowded(): boolean {
    return this.#init.residents?.crowded ?? false;
  }

  adopt(task: ProduceStepTask, dueAt: number, handler: ResidentHandler): ResidentRun | null {
    // Only a session holding its log files is kept by a step thread: one whose steps open their
    // files (no room under OPEN_FILES_LIMIT) runs on the main thread's path, its steps batched.
    if (!this.#files?.holdsAll) return null;
    return this.#init.residents?.adopt(task, dueAt, this.#init.burst.rateSlackMs, handler) ?? null;
  }

  schedule(fn: () => void, delayMs: number, reuse?: WheelTimer): WheelTimer {
    return this.#init.timers.schedule(fn, delayMs, reuse);
  }

  /** Room left under the spool's quotas, for a producer's next burst. */
  spoolRoom(): { chunks: number; bytes: number } {
    const q = this.#init.flow;
    return { chunks: q.spoolQuotaChunks - this.seq.spooledChunks, bytes: q.spoolQuotaBytes - this.seq.spooledBytes };
  }

  onChunks(chunks: ChunkRecord[]): void {
    const observer = this.#init.observer;
    for (const c of chunks) {
      this.seq.addChunk(c);
      observer.chunkProduced?.(this, c);
    }
    if (this.consumer instanceof StepConsumer) this.consumer.push(chunks);
    this.#flush();
    this.#onLateEvent?.();
  }

  onResults(results: ResultRecord[]): void {
    for (const r of results) this.seq.addResult(r);
    this.#init.observer.resultsConsumed?.(this, results);
    this.#flush();
    this.#onLateEvent?.();
  }

  /** Counts what a resident's quiet steps came to now (pool/quiet-steps.ts): inspect reads it fresh. */
  catchUp(): void {
    if (this.producer instanceof StepProducer) this.producer.catchUp();
  }

  onQuietSteps(q: QuietSteps, lastSeq: number): void {
    if (q.chunks === 0) return;
    this.seq.passQuiet(lastSeq, q.chunks, q.bytes);
    markDelivered(this.flags, lastSeq);
    const s = q.samples;
    for (let at = 0, end = q.results * SAMPLE_FIELDS; at < end; at += SAMPLE_FIELDS) {
      this.latency.record(s[at + SAMPLE.LATENCY]!);
      if (!Number.isNaN(s[at + SAMPLE.STEP_WAIT]!)) this.onTaskTimed('producer', 'step', s[at + SAMPLE.STEP_WAIT]!, s[at + SAMPLE.STEP_RUN]!);
    }
    this.#init.observer.quietSteps?.(this, q);
    this.#sink?.countQuietResults?.(q.results);
    this.#onLateEvent?.();
  }

  onProducerDone(lastSeq: number): void {
    this.seq.producerLastSeq = lastSeq;
    this.#checkComplete();
  }

  onConsumerReturned(lastSeq: number): void {
    // Its results travel on another channel than its return: complete once they were delivered.
    this.seq.consumerLastSeq = lastSeq;
    this.#checkComplete();
  }

  onTaskTimed(side: SideName, shape: 'step' | 'loop', waitMs: number, runMs: number): void {
    this.#init.observer.taskTimed?.(this, side, shape, waitMs, runMs);
  }

  onSideError(side: SideName, error: TaskError): void {
    if (this.error) return;
    // A quick consumer may run inside its producer's task (after the producer's part marked itself
    // idle). If that task's thread died with only the consumer marked busy, the consumer's code did it.
    if (side === 'producer' && error.name === 'WorkerError') {
      if (runningThread(this.flags, 'producer') === 0 && runningThread(this.flags, 'consumer') !== 0) side = 'consumer';
    }
    this.error = `${side} of pipeline "${this.entry.name}" failed: ${error.message}`;
    this.#init.logger.warn({ session: this.id, side, err: error.message, stack: error.stack }, 'pipeline failed');
    // A side that fails while the session is already stopping changes nothing but the record.
    if (this.#stopping) return;
    this.#sink?.failed(this, tandemError('PIPELINE_FAILED', this.error));
    void this.stop('failed');
  }

  /** Called for each event a loop posts for this session. */
  onWorkerChunk(chunk: ChunkRecord): void {
    this.onChunks([chunk]);
  }

  onWorkerResult(result: ResultRecord): void {
    this.onResults([result]);
  }

  /**
   * Sends every result whose chunk and result are both known, strictly in seq order, for as long
   * as a client is attached and its send buffer has room; then decides who may run.
   */
  #flush(): void {
    if (this.ended || this.#replaying) return;
    const sink = this.#sink;
    const observer = this.#init.observer;
    while (sink?.writable()) {
      const next = this.seq.takeNext();
      if (!next) break;
      const { chunk, result } = next;
      markDelivered(this.flags, chunk.seq);
      if (chunk.seq <= this.#clientHas) continue;
      const byThread = sink.result(this, { seq: chunk.seq, json: result.json, producedAt: chunk.producedAt });
      // A step thread wrote it right after its step ended, before its answer came here.
      const latencyMs = (byThread === true ? result.doneAt : nowMs()) - chunk.producedAt;
      this.latency.record(latencyMs);
      observer.resultDelivered?.(this, latencyMs, result.takenAt - chunk.producedAt);
    }
    this.#regulate();
    this.#checkComplete();
  }

  // ---- flow control ----

  producerMayRun(): boolean {
    const q = this.#init.flow;
    return this.seq.spooledChunks < q.spoolQuotaChunks && this.seq.spooledBytes < q.spoolQuotaBytes;
  }

  answerOnItsWay(): boolean {
    return this.#sentToClients() > this.seq.delivered;
  }

  /**
   * The last result seq a client was sent, by either thread: what the session delivered, or more
   * when a step thread wrote results whose answer has not been taken in (STEP_SENDS).
   */
  #sentToClients(): number {
    return Math.max(this.seq.delivered, this.#lostSent, this.#sink?.sentThrough?.() ?? 0);
  }

  /** No step thread writes to the attached client from here on; what they sent it is kept in #lostSent. */
  #takeBackSends(): void {
    this.sendThrough(null);
    this.#lostSent = Math.max(this.#lostSent, this.#sink?.takeBackSends?.() ?? 0);
  }

  consumerMayRun(): boolean {
    return this.#sink !== null && !this.#replaying && this.#sink.writable();
  }

  /**
   * Pauses or resumes each side from the facts: a client that cannot take results pauses the
   * consumer (chunks wait on disk); a spool at its quota pauses the producer. Nothing is dropped.
   */
  #regulate(): void {
    if (this.#state !== 'running') return;
    const producerOk = this.producerMayRun();
    const consumerOk = this.consumerMayRun();
    setPaused(this.flags, FLAG.PAUSE_PRODUCER, !producerOk);
    setPaused(this.flags, FLAG.PAUSE_CONSUMER, !consumerOk);
    if (producerOk) this.producer.resume();
    if (consumerOk) this.consumer.resume();
    // An attached client with a full send buffer: look again shortly (ws has no 'drain' event).
    const blocked = this.#sink !== null && !this.#replaying && !consumerOk;
    if (blocked && !this.#drainTimer) {
      this.#drainTimer = setInterval(() => {
        if (this.#sink?.writable() ?? true) {
          clearInterval(this.#drainTimer!);
          this.#drainTimer = null;
          this.#flush();
        }
      }, DRAIN_POLL_MS);
    }
  }

  // ---- connection changes ----

  /** Whether a client is attached right now (false during the resume window). */
  get attached(): boolean {
    return this.#sink !== null;
  }

  /**
   * Lets step threads write this session's live results into the socket of `slot` (STEP_SENDS:
   * ws/socket-slots.ts), or no socket (null); what they do not write, its sink is given as always.
   */
  sendThrough(slot: { index: number; id: number } | null): void {
    Atomics.store(this.flags.ints, FLAG.SEND_ID, slot ? slot.id : 0);
    Atomics.store(this.flags.ints, FLAG.SEND_SLOT, slot ? slot.index + 1 : 0);
  }

  /**
   * The client's connection dropped without STOP: keep running for the resume window (results
   * wait, chunks spool up to the quota), then end with reason `disconnect`.
   */
  detach(sink: SessionSink): void {
    if (this.#sink !== sink || this.#stopping) return;
    // What quiet steps sent it is counted to it (pool/quiet-steps.ts).
    this.catchUp();
    this.#takeBackSends();
    this.#sink = null;
    const graceMs = this.#init.flow.resumeGraceMs;
    if (graceMs <= 0) {
      void this.stop('disconnect');
      return;
    }
    this.#detachTimer = setTimeout(() => void this.stop('disconnect'), graceMs);
    this.#regulate();
  }

  /** Oldest result seq RESUME can still replay (the results log's window). */
  get resumableFrom(): number {
    return Math.max(1, this.flags.ints[FLAG.RESULT_WINDOW_FROM]!);
  }

  /**
   * Attaches a resuming client that last received `after`: it is told `resumed`, then gets every
   * later result exactly once, in order — those already sent are read back from the results log
   * on disk. A connection still attached is superseded.
   * @throws RESUME_GAP when results after `after` have left the log's window (RESUME_RETAIN_*);
   * BAD_MESSAGE when `after` is beyond what was sent; RESUME_FAILED when the session is ending.
   */
  async attach(sink: SessionSink, after: number): Promise<void> {
    if (this.#stopping || this.#state !== 'running') throw tandemError('RESUME_FAILED', 'the session is no longer running');
    if (this.#replaying) throw tandemError('RESUME_FAILED', 'another RESUME of this session is under way; retry');
    // A step thread keeping the producer sends results the main thread hears of later (quiet
    // steps: pool/quiet-steps.ts): it hands the producer back first, so that all it sent is counted.
    // Not made resident again meanwhile: #replaying keeps the consumer from being lent.
    if (this.producer instanceof StepProducer && this.producer.resident) {
      this.#replaying = true;
      try {
        await this.producer.leaveResidency();
      } finally {
        this.#replaying = false;
      }
      if (this.#stopping || this.#state !== 'running') throw tandemError('RESUME_FAILED', 'the session is no longer running');
    }
    // What step threads sent counts as sent, though its answer may not have arrived yet.
    const upTo = this.seq.delivered;
    const sent = this.#sentToClients();
    if (after > sent) {
      throw tandemError('BAD_MESSAGE', `RESUME: field "after" is ${after} but only ${sent} results were sent`);
    }
    const gap = () =>
      tandemError(
        'RESUME_GAP',
        `results after ${after} are no longer kept: the resume window (RESUME_RETAIN_BYTES, RESUME_RETAIN_SECONDS) reaches back to seq ${this.resumableFrom}; start a new session`,
      );
    if (after + 1 < this.resumableFrom && after < upTo) throw gap();
    // No step thread writes to the client being replaced from here on (STEP_SENDS).
    this.#takeBackSends();
    // While the replay is read, nothing is sent to anyone: results wait in memory, in order.
    this.#replaying = true;
    const previous = this.#sink;
    this.#sink = sink;
    let replay;
    try {
      replay = await readLogRange(this.spoolDir, 'results', after + 1, upTo);
    } finally {
      this.#replaying = false;
    }
    if (this.#stopping || this.#sink !== sink) {
      if (this.#sink === sink) this.#sink = previous;
      throw tandemError('RESUME_FAILED', 'the session ended while it was being resumed');
    }
    if (!replay) {
      this.#sink = previous;
      this.#regulate();
      throw gap();
    }
    if (this.#detachTimer) clearTimeout(this.#detachTimer);
    this.#detachTimer = null;
    previous?.superseded?.(this);
    // Results the client has (step threads sent them before their answer arrived) are not sent again;
    // what it lacks of what the last client was sent, it is sent now.
    this.#clientHas = after;
    this.#lostSent = after;
    sink.resumed?.(this, after);
    for (const r of replay) sink.result(this, { seq: r.seq, json: Buffer.from(r.payload).toString('utf8'), producedAt: r.timeMs });
    this.#flush();
  }

  #checkComplete(): void {
    if (this.#state === 'running' && this.seq.complete) void this.stop('completed');
  }

  // ---- lifecycle ----

  /**
   * Stops the session: the shared flag is set (every loop wait wakes), nothing new is scheduled,
   * running steps finish; whatever still runs after `graceMs` has its thread terminated.
   * Idempotent: every call returns the same summary.
   */
  stop(reason: EndReason, graceMs = this.#init.stopGraceMs): Promise<SessionSummary> {
    if (!this.#stopping) this.#stopping = this.#stop(reason, graceMs);
    return this.#stopping;
  }

  async #stop(reason: EndReason, graceMs: number): Promise<SessionSummary> {
    const began = nowMs();
    this.endReason = reason;
    this.#state = 'stopping';
    if (this.#detachTimer) clearTimeout(this.#detachTimer);
    if (this.#drainTimer) clearInterval(this.#drainTimer);
    this.#detachTimer = this.#drainTimer = null;
    requestStop(this.flags);
    this.producer.halt();
    this.consumer.halt();
    // Usually both sides were only waiting between steps and are idle already: no grace timer.
    const forced = this.producer.busy || this.consumer.busy ? await this.#idleOrForced(graceMs) : false;
    await this.#lateEvents(graceMs);
    // A thread terminated by the force, or by STEP_TIMEOUT_MS before the stop, has normally exited
    // by now (the pool waits for it, up to STOP_EXIT_WAIT_MS); one blocked in a native call may
    // not have, and could still write. The flags still name it: a terminated step never marked
    // its side idle. (A side that ended by itself marked it idle: they name none.)
    const threads = this.#threadsNamed();
    // The held descriptors are closed with the folder's removal (after a storm of STOPs, not in
    // it: on two cores a close costs the main thread as much as it costs to close the socket).
    let releaseFiles: (() => void) | undefined;
    if (this.#init.pool.running(threads)) this.#files?.closeWhen(this.#init.pool.whenExited(threads));
    else if (this.keep) this.#files?.close();
    else {
      this.#files?.retire();
      releaseFiles = () => this.#files?.close();
    }
    // Both sides are idle: no pipeline code runs for this session and nothing more is written or
    // sent. What it held for admission is released first, then the client is told, so a START
    // sent after `stopped` finds room. The spool's removal and the bookkeeping follow, so a storm
    // of STOPs does not queue every `stopped` behind every folder's removal.
    // What the client got: a step thread may have written results whose answer was not taken in
    // (a resident taken back at the stop drops the answer on its way: pool/residents.ts release).
    this.#takeBackSends();
    const sent = Math.max(this.seq.delivered, this.#lostSent);
    const summary: SessionSummary = {
      session: this.id,
      reason,
      chunks: sent,
      produced: this.seq.produced,
      forced,
      stopMs: nowMs() - began,
      error: this.error,
    };
    const sink = this.#sink;
    this.#sink = null;
    this.seq.clear();
    this.#init.onReleased(this);
    sink?.ended(this, summary);
    // The session counts as ended (state, endedAt, summary) only once its folder is gone (a stop
    // during start first waits for the folder to exist).
    await this.#spoolReady?.catch(() => {});
    if (!this.keep) await this.#init.spools.remove(this.spoolDir, releaseFiles).catch((err: unknown) => {
      this.#init.logger.error({ session: this.id, err }, 'could not remove spool');
    });
    this.endedAt = Date.now();
    this.#state = reason === 'failed' || reason === 'instance_lost' ? 'failed' : 'stopped';
    // Nothing runs for it any more: keep a copy of its flags, so its slot can go to another session.
    this.#flags = { ints: this.#flags.ints.slice(), floats: this.#flags.floats.slice() };
    // stopMs keeps its meaning: from the stop request to everything released.
    const final: SessionSummary = { ...summary, stopMs: nowMs() - began };
    this.summary = final;
    this.#init.logger.info({ session: this.id, reason, delivered: this.seq.delivered, forced }, 'session ended');
    this.#init.observer.sessionEnded?.(this, final);
    // An ended session may be kept for inspection a while.
    this.#init.onEnded(this);
    return final;
  }

  /**
   * Waits until both sides are idle; true if one had to be forced. A side is forced only for code
   * of its own still running on a thread after `graceMs` (its flags name the thread). A side busy
   * with no thread running its code has either finished, with its answer not yet handled by this
   * (busy) thread, or not begun, and will skip its step for the stop flag: it is looked at again
   * every STOP_RECHECK_MS, forced as soon as a thread runs its code, and at the latest once the
   * stop has waited stopBoundMs(graceMs) (a step still waiting for a thread then).
   */
  async #idleOrForced(graceMs: number): Promise<boolean> {
    const sides = [this.producer, this.consumer];
    const deadline = nowMs() + stopBoundMs(graceMs);
    const forced = new Set<Side>();
    let timer: NodeJS.Timeout;
    const look = (): void => {
      const late = nowMs() >= deadline;
      for (const side of sides) {
        if (!side.busy || forced.has(side) || !(late || runningThread(this.flags, side.name) !== 0)) continue;
        forced.add(side);
        side.force();
      }
      if (!late && forced.size < sides.length) timer = setTimeout(look, STOP_RECHECK_MS);
    };
    timer = setTimeout(look, graceMs);
    await Promise.all(sides.map((side) => side.idle()));
    clearTimeout(timer);
    return forced.size > 0;
  }

  /** The threads the session's sides are running on, as its flags name them (none once both marked themselves idle). */
  #threadsNamed(): number[] {
    return [runningThread(this.flags, 'producer'), runningThread(this.flags, 'consumer')].filter((id) => id !== 0);
  }

  /**
   * A loop posts its chunks and results on another channel than its answer, so the last of them
   * may arrive after the loop returned: wait for them (they are flushed to the client as they
   * come), at most `limitMs`. Nothing to wait for in the usual case.
   */
  async #lateEvents(limitMs: number): Promise<void> {
    const caughtUp = () => this.seq.caughtUp(this.producer.returnedLastSeq, this.consumer.returnedLastSeq);
    if (caughtUp()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, limitMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#onLateEvent = () => {
        if (caughtUp()) done();
      };
    });
    this.#onLateEvent = null;
  }

  get stopRequested(): boolean {
    return isStopRequested(this.flags);
  }

  /** Live view of one side for inspect: the thread it is on and how long its current step has run. */
  sideInfo(side: SideName) {
    const s = side === 'producer' ? this.producer : this.consumer;
    // A thread terminated mid-step never clears its slots: once ended, a side holds no thread.
    const ended = this.ended;
    const threadId = ended ? 0 : runningThread(this.flags, side);
    const startedAt = ended ? 0 : stepStartedAt(this.flags, side);
    const pauseSlot = side === 'producer' ? FLAG.PAUSE_PRODUCER : FLAG.PAUSE_CONSUMER;
    const loopPaused = !ended && s.shape === 'loop' && Atomics.load(this.flags.ints, pauseSlot) === 1;
    return {
      shape: s.shape,
      state: loopPaused ? ('paused' as const) : s.state,
      threadId: threadId || null,
      steps: s.steps,
      currentStepSeconds: startedAt > 0 ? (nowMs() - startedAt) / 1000 : null,
      lastError: s.lastError,
      lastErrorStack: s.lastErrorStack,
    };
  }

  /** Chunks written but not yet delivered, and the age of the oldest in seconds. */
  lag(): { chunks: number; ageSeconds: number } {
    const { chunks, oldestAt } = this.seq.lag();
    return { chunks, ageSeconds: oldestAt > 0 ? (nowMs() - oldestAt) / 1000 : 0 };
  }
}
