import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createFlags, FLAG, STARTED_AT, isStopRequested, nowMs, requestStop, setPaused } from '../pool/flags.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { ChunkRecord, ResultRecord, TaskError, TaskSession } from '../pool/messages.js';
import type { PipelineEntry } from '../pipelines/catalog.js';
import { tandemError, type TandemError } from '../errors.js';
import { createSpool, removeSpool } from './spool.js';
import { LoopConsumer, LoopProducer, StepConsumer, StepProducer, type Side, type SideHost, type SideName } from './sides.js';
import { LatencyWindow } from './latency-window.js';
import { ReplayRing } from './replay-ring.js';

export type SessionState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';
/** Why a session ended. */
export type EndReason = 'client' | 'admin' | 'disconnect' | 'failed' | 'shutdown' | 'completed';

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
  /** Called in chunk order, once per chunk (again for replays after a resume). */
  result(session: Session, result: DeliveredResult): void;
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
  keep: boolean;
  clientAddress: string | null;
  spoolDir: string;
  pool: WorkerPool;
  sink: SessionSink;
  /**
   * Called once when the session has ended (its spool is gone), after the sink heard of it: the
   * sink is told as soon as both sides are idle, before the spool's removal.
   */
  onEnded(session: Session): void;
  observer: SessionObserver;
  logger: Logger;
  batchMax: number;
  fsync: boolean;
  stopGraceMs: number;
  flow: FlowLimits;
}

/** Limits of a session's flow (see config.ts for the variables and defaults). */
export interface FlowLimits {
  /** Chunks waiting on disk before the producer is paused. */
  spoolQuotaChunks: number;
  /** Bytes waiting on disk before the producer is paused. */
  spoolQuotaBytes: number;
  /** How long a session waits for RESUME after its connection dropped, ms (0 = ends at once). */
  resumeGraceMs: number;
  /** Results kept after sending, to replay on RESUME. */
  replayResults: number;
}

/** How often a blocked client's send buffer is checked for room, ms. */
const DRAIN_POLL_MS = 20;

/**
 * One client's producer + consumer pair, from START to the moment nothing of it remains.
 * States: starting → running → stopping → stopped | failed. `stop()` is idempotent and
 * bounded: cooperative first (shared flag), forced after the grace period.
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
  state: SessionState = 'starting';
  endReason: EndReason | null = null;
  error: string | null = null;
  readonly pool: WorkerPool;
  readonly flags = createFlags();
  readonly producer: Side;
  readonly consumer: Side;
  readonly latency = new LatencyWindow();
  /** Last seq written, bytes written, results delivered. */
  produced = 0;
  bytesProduced = 0;
  consumed = 0;
  delivered = 0;
  summary: SessionSummary | null = null;
  /** Shown once, in `started`: only its holder may RESUME this session. */
  readonly resumeSecret = randomBytes(18).toString('base64url');
  /** Chunks (and their bytes) on disk that the consumer has not taken yet. */
  spooledChunks = 0;
  spooledBytes = 0;

  /** Everything the session was made with but its sink: an ended session kept for inspect must not hold its connection. */
  readonly #init: Omit<SessionInit, 'sink'>;
  readonly #task: TaskSession;
  readonly #chunks = new Map<number, ChunkRecord>();
  readonly #results = new Map<number, ResultRecord>();
  #producerLastSeq: number | null = null;
  /** Seq of the last result a loop consumer emitted before it returned by itself. */
  #consumerLastSeq: number | null = null;
  /** The spool folder's creation: a stop during start waits for it, so it can remove it. */
  #spoolReady: Promise<void> | null = null;
  #stopping: Promise<SessionSummary> | null = null;
  /** Highest seq of a result received from the consumer. */
  #lastResultSeq = 0;
  /** Set while a stop waits for events a returned loop posted: called on each chunk or result. */
  #onLateEvent: (() => void) | null = null;
  #sink: SessionSink | null;
  /** Results sent, by seq modulo its length, for replay on RESUME. */
  readonly #replay: ReplayRing;
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
    this.#replay = new ReplayRing(init.flow.replayResults);
    this.#task = {
      module: init.entry.module,
      sessionId: init.id,
      flags: this.flags.ints.buffer as SharedArrayBuffer,
      spoolDir: init.spoolDir,
      url: init.url,
      input: init.input,
      options: init.options,
      keep: init.keep,
      fsync: init.fsync,
      spoolQuotaChunks: init.flow.spoolQuotaChunks,
    };
    this.producer = init.entry.producerShape === 'step' ? new StepProducer(this) : new LoopProducer(this);
    this.consumer = init.entry.consumerShape === 'step' ? new StepConsumer(this, init.batchMax) : new LoopConsumer(this);
    if (this.producer instanceof StepProducer && this.consumer instanceof StepConsumer) this.producer.pairWith(this.consumer);
  }

  async start(): Promise<void> {
    this.#spoolReady = createSpool(this.spoolDir, this.keep);
    await this.#spoolReady;
    if (this.#stopping) return;
    this.state = 'running';
    this.startedAt = Date.now();
    this.#init.observer.sessionStarted?.(this);
    this.consumer.start();
    this.producer.start();
  }

  // ---- SideHost ----

  task(): TaskSession {
    return this.#task;
  }

  onChunks(chunks: ChunkRecord[]): void {
    const seqs: number[] = [];
    for (const c of chunks) {
      this.#chunks.set(c.seq, c);
      if (c.seq > this.produced) this.produced = c.seq;
      this.bytesProduced += c.sizeBytes;
      // A loop consumer's result can arrive before the chunk's record: that chunk is already gone.
      if (!this.#results.has(c.seq)) {
        this.spooledChunks++;
        this.spooledBytes += c.sizeBytes;
      }
      seqs.push(c.seq);
      this.#init.observer.chunkProduced?.(this, c);
    }
    if (this.consumer instanceof StepConsumer) this.consumer.push(seqs);
    this.#flush();
    this.#onLateEvent?.();
  }

  onResults(results: ResultRecord[]): void {
    for (const r of results) {
      this.#results.set(r.seq, r);
      // The consumer is done with the chunk's file: it no longer counts against the quota
      // (a chunk whose record has not arrived yet was never counted: see onChunks).
      const chunk = this.#chunks.get(r.seq);
      if (chunk) {
        this.spooledChunks--;
        this.spooledBytes -= chunk.sizeBytes;
      }
    }
    this.consumed += results.length;
    const last = results[results.length - 1];
    if (last && last.seq > this.#lastResultSeq) this.#lastResultSeq = last.seq;
    this.#init.observer.resultsConsumed?.(this, results);
    this.#flush();
    this.#onLateEvent?.();
  }

  onProducerDone(lastSeq: number): void {
    this.#producerLastSeq = lastSeq;
    this.#checkComplete();
  }

  onConsumerReturned(lastSeq: number): void {
    // Its results travel on another channel than its return: complete once they were delivered.
    this.#consumerLastSeq = lastSeq;
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
      const producerBusy = Atomics.load(this.flags.ints, FLAG.PRODUCER_THREAD) !== 0;
      const consumerBusy = Atomics.load(this.flags.ints, FLAG.CONSUMER_THREAD) !== 0;
      if (!producerBusy && consumerBusy) side = 'consumer';
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
    if (this.endedAt !== null) return;
    const sink = this.#sink;
    while (sink?.writable()) {
      const seq = this.delivered + 1;
      const chunk = this.#chunks.get(seq);
      const result = this.#results.get(seq);
      if (!chunk || !result) break;
      this.#chunks.delete(seq);
      this.#results.delete(seq);
      this.delivered = seq;
      const delivered = { seq, json: result.json, producedAt: chunk.producedAt };
      this.#replay.record(delivered);
      sink.result(this, delivered);
      const latencyMs = nowMs() - chunk.producedAt;
      this.latency.record(latencyMs);
      this.#init.observer.resultDelivered?.(this, latencyMs, result.takenAt - chunk.producedAt);
    }
    this.#regulate();
    this.#checkComplete();
  }

  // ---- flow control ----

  producerMayRun(): boolean {
    const q = this.#init.flow;
    return this.spooledChunks < q.spoolQuotaChunks && this.spooledBytes < q.spoolQuotaBytes;
  }

  consumerMayRun(): boolean {
    return this.#sink !== null && this.#sink.writable();
  }

  /**
   * Pauses or resumes each side from the facts: a client that cannot take results pauses the
   * consumer (chunks wait on disk); a spool at its quota pauses the producer. Nothing is dropped.
   */
  #regulate(): void {
    if (this.state !== 'running') return;
    const producerOk = this.producerMayRun();
    const consumerOk = this.consumerMayRun();
    setPaused(this.flags, FLAG.PAUSE_PRODUCER, !producerOk);
    setPaused(this.flags, FLAG.PAUSE_CONSUMER, !consumerOk);
    if (producerOk) this.producer.resume();
    if (consumerOk) this.consumer.resume();
    // An attached client with a full send buffer: look again shortly (ws has no 'drain' event).
    const blocked = this.#sink !== null && !consumerOk;
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
   * The client's connection dropped without STOP: keep running for the resume window (results
   * wait, chunks spool up to the quota), then end with reason `disconnect`.
   */
  detach(sink: SessionSink): void {
    if (this.#sink !== sink || this.#stopping) return;
    this.#sink = null;
    const graceMs = this.#init.flow.resumeGraceMs;
    if (graceMs <= 0) {
      void this.stop('disconnect');
      return;
    }
    this.#detachTimer = setTimeout(() => void this.stop('disconnect'), graceMs);
    this.#regulate();
  }

  /**
   * Attaches a resuming client that last received `after`: it is told `resumed`, then gets every
   * later result exactly once, in order. A connection still attached is superseded.
   * @throws RESUME_GAP when results after `after` are no longer kept; BAD_MESSAGE when `after`
   * is beyond what was sent.
   */
  attach(sink: SessionSink, after: number): void {
    if (this.#stopping || this.state !== 'running') throw tandemError('RESUME_FAILED', 'the session is no longer running');
    if (after > this.delivered) {
      throw tandemError('BAD_MESSAGE', `RESUME: field "after" is ${after} but only ${this.delivered} results were sent`);
    }
    const replay = this.#replay.range(after + 1, this.delivered);
    if (!replay) {
      throw tandemError(
        'RESUME_GAP',
        `results after ${after} are no longer kept (the last ${this.#replay.size} are: RESUME_REPLAY_RESULTS); start a new session`,
      );
    }
    if (this.#detachTimer) clearTimeout(this.#detachTimer);
    this.#detachTimer = null;
    const previous = this.#sink;
    this.#sink = sink;
    previous?.superseded?.(this);
    sink.resumed?.(this, after);
    for (const r of replay) sink.result(this, r);
    this.#flush();
  }

  #checkComplete(): void {
    if (this.state !== 'running') return;
    const producerDrained = this.#producerLastSeq !== null && this.delivered >= this.#producerLastSeq;
    const consumerDrained = this.#consumerLastSeq !== null && this.delivered >= this.#consumerLastSeq;
    if (producerDrained || consumerDrained) void this.stop('completed');
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
    this.state = 'stopping';
    if (this.#detachTimer) clearTimeout(this.#detachTimer);
    if (this.#drainTimer) clearInterval(this.#drainTimer);
    this.#detachTimer = this.#drainTimer = null;
    requestStop(this.flags);
    this.producer.halt();
    this.consumer.halt();
    let forced = false;
    // Usually both sides were only waiting between steps and are idle already: no grace timer.
    if (this.producer.busy || this.consumer.busy) {
      const grace = setTimeout(() => {
        forced = true;
        this.producer.force();
        this.consumer.force();
      }, graceMs);
      await Promise.all([this.producer.idle(), this.consumer.idle()]);
      clearTimeout(grace);
    }
    await this.#lateEvents(graceMs);
    // Both sides are idle: no pipeline code runs for this session and nothing more is written or
    // sent. The client is told now; the spool's removal and the bookkeeping follow, so a storm of
    // STOPs does not queue every `stopped` behind every folder's removal.
    const summary: SessionSummary = {
      session: this.id,
      reason,
      chunks: this.delivered,
      produced: this.produced,
      forced,
      stopMs: nowMs() - began,
      error: this.error,
    };
    const sink = this.#sink;
    this.#sink = null;
    this.#replay.clear();
    this.#chunks.clear();
    this.#results.clear();
    sink?.ended(this, summary);
    // The session counts as ended (state, endedAt, summary, out of the live sessions) only once
    // its folder is gone (a stop during start first waits for the folder to exist).
    await this.#spoolReady?.catch(() => {});
    if (!this.keep) await removeSpool(this.spoolDir).catch((err: unknown) => {
      this.#init.logger.error({ session: this.id, err }, 'could not remove spool');
    });
    this.endedAt = Date.now();
    this.state = reason === 'failed' ? 'failed' : 'stopped';
    // stopMs keeps its meaning: from the stop request to everything released.
    const final: SessionSummary = { ...summary, stopMs: nowMs() - began };
    this.summary = final;
    this.#init.logger.info({ session: this.id, reason, delivered: this.delivered, forced }, 'session ended');
    this.#init.observer.sessionEnded?.(this, final);
    // An ended session may be kept for inspection a while.
    this.#init.onEnded(this);
    return final;
  }

  /** Whether every chunk and result a returned loop side posted has arrived. */
  #loopEventsIn(): boolean {
    const p = this.producer.returnedLastSeq;
    const c = this.consumer.returnedLastSeq;
    return (p === null || this.produced >= p) && (c === null || this.#lastResultSeq >= c);
  }

  /**
   * A loop posts its chunks and results on another channel than its answer, so the last of them
   * may arrive after the loop returned: wait for them (they are flushed to the client as they
   * come), at most `limitMs`. Nothing to wait for in the usual case.
   */
  async #lateEvents(limitMs: number): Promise<void> {
    if (this.#loopEventsIn()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, limitMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#onLateEvent = () => {
        if (this.#loopEventsIn()) done();
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
    const ended = this.endedAt !== null;
    const threadId = ended ? 0 : Atomics.load(this.flags.ints, side === 'producer' ? FLAG.PRODUCER_THREAD : FLAG.CONSUMER_THREAD);
    const startedAt = ended ? 0 : (this.flags.floats[STARTED_AT[side]] ?? 0);
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
    const chunks = Math.max(0, this.produced - this.delivered);
    const oldest = this.#chunks.get(this.delivered + 1);
    return { chunks, ageSeconds: chunks > 0 && oldest ? (nowMs() - oldest.producedAt) / 1000 : 0 };
  }
}
