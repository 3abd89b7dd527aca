import type { Logger } from 'pino';
import { createFlags, FLAG, STARTED_AT, isStopRequested, nowMs, requestStop } from '../pool/flags.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { ChunkRecord, ResultRecord, TaskError, TaskSession } from '../pool/messages.js';
import type { PipelineEntry } from '../pipelines/catalog.js';
import { tandemError, type TandemError } from '../errors.js';
import { createSpool, removeSpool } from './spool.js';
import { LoopConsumer, LoopProducer, StepConsumer, StepProducer, type Side, type SideHost, type SideName } from './sides.js';
import { LatencyWindow } from './latency-window.js';

export type SessionState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';
/** Why a session ended. */
export type EndReason = 'client' | 'admin' | 'disconnect' | 'failed' | 'shutdown' | 'completed';

export interface DeliveredResult {
  seq: number;
  data: unknown;
  producedAt: number;
}

/** Where a session's output goes: the WebSocket connection that owns it. */
export interface SessionSink {
  /** Called in chunk order, once per chunk. Returns false when the result could not be sent. */
  result(session: Session, result: DeliveredResult): void;
  /** The pipeline failed; called once, before `ended`. */
  failed(session: Session, error: TandemError): void;
  /** Everything of the session is released. */
  ended(session: Session, summary: SessionSummary): void;
}

/** Hooks for metrics; every method optional. */
export interface SessionObserver {
  chunkProduced?(session: Session, chunk: ChunkRecord): void;
  resultDelivered?(session: Session, latencyMs: number): void;
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
  observer: SessionObserver;
  logger: Logger;
  batchMax: number;
  fsync: boolean;
  stopGraceMs: number;
}

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

  readonly #init: SessionInit;
  readonly #task: TaskSession;
  readonly #chunks = new Map<number, ChunkRecord>();
  readonly #results = new Map<number, unknown>();
  #producerLastSeq: number | null = null;
  #stopping: Promise<SessionSummary> | null = null;

  constructor(init: SessionInit) {
    this.#init = init;
    this.id = init.id;
    this.entry = init.entry;
    this.url = init.url;
    this.options = init.options;
    this.keep = init.keep;
    this.clientAddress = init.clientAddress;
    this.spoolDir = init.spoolDir;
    this.pool = init.pool;
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
    };
    this.producer = init.entry.producerShape === 'step' ? new StepProducer(this) : new LoopProducer(this);
    this.consumer = init.entry.consumerShape === 'step' ? new StepConsumer(this, init.batchMax) : new LoopConsumer(this);
    if (this.producer instanceof StepProducer && this.consumer instanceof StepConsumer) this.producer.pairWith(this.consumer);
  }

  async start(): Promise<void> {
    await createSpool(this.spoolDir, this.keep);
    if (this.#stopping) return;
    this.state = 'running';
    this.startedAt = Date.now();
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
      seqs.push(c.seq);
      this.#init.observer.chunkProduced?.(this, c);
    }
    if (this.consumer instanceof StepConsumer) this.consumer.push(seqs);
    this.#flush();
  }

  onResults(results: ResultRecord[]): void {
    for (const r of results) this.#results.set(r.seq, r.data);
    this.consumed += results.length;
    this.#flush();
  }

  onProducerDone(lastSeq: number): void {
    this.#producerLastSeq = lastSeq;
    this.#checkComplete();
  }

  onConsumerReturned(lastSeq: number): void {
    if (lastSeq >= this.delivered) this.#checkComplete(true);
  }

  onSideError(side: SideName, error: TaskError): void {
    if (this.error) return;
    this.error = `${side} of pipeline "${this.entry.name}" failed: ${error.message}`;
    this.#init.logger.warn({ session: this.id, side, err: error.message }, 'pipeline failed');
    // A side that fails while the session is already stopping changes nothing but the record.
    if (this.#stopping) return;
    this.#init.sink.failed(this, tandemError('PIPELINE_FAILED', this.error));
    void this.stop('failed');
  }

  /** Called for each event a loop posts for this session. */
  onWorkerChunk(chunk: ChunkRecord): void {
    this.onChunks([chunk]);
  }

  onWorkerResult(result: ResultRecord): void {
    this.onResults([result]);
  }

  /** Sends every result whose chunk and result are both known, strictly in seq order. */
  #flush(): void {
    if (this.endedAt !== null) return;
    for (;;) {
      const seq = this.delivered + 1;
      const chunk = this.#chunks.get(seq);
      if (!chunk || !this.#results.has(seq)) break;
      const data = this.#results.get(seq);
      this.#chunks.delete(seq);
      this.#results.delete(seq);
      this.delivered = seq;
      this.#init.sink.result(this, { seq, data, producedAt: chunk.producedAt });
      const latencyMs = nowMs() - chunk.producedAt;
      this.latency.record(latencyMs);
      this.#init.observer.resultDelivered?.(this, latencyMs);
    }
    this.#checkComplete();
  }

  #checkComplete(consumerReturned = false): void {
    if (this.state !== 'running') return;
    const drained = this.#producerLastSeq !== null && this.delivered >= this.#producerLastSeq;
    if (drained || consumerReturned) void this.stop('completed');
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
    requestStop(this.flags);
    this.producer.halt();
    this.consumer.halt();
    let forced = false;
    const grace = setTimeout(() => {
      forced = true;
      this.producer.force();
      this.consumer.force();
    }, graceMs);
    await Promise.all([this.producer.idle(), this.consumer.idle()]);
    clearTimeout(grace);
    if (!this.keep) await removeSpool(this.spoolDir).catch((err: unknown) => {
      this.#init.logger.error({ session: this.id, err }, 'could not remove spool');
    });
    this.#chunks.clear();
    this.#results.clear();
    this.endedAt = Date.now();
    this.state = reason === 'failed' ? 'failed' : 'stopped';
    const summary: SessionSummary = {
      session: this.id,
      reason,
      chunks: this.delivered,
      produced: this.produced,
      forced,
      stopMs: nowMs() - began,
      error: this.error,
    };
    this.summary = summary;
    this.#init.logger.info({ session: this.id, reason, delivered: this.delivered, forced }, 'session ended');
    this.#init.observer.sessionEnded?.(this, summary);
    this.#init.sink.ended(this, summary);
    return summary;
  }

  get stopRequested(): boolean {
    return isStopRequested(this.flags);
  }

  /** Live view of one side for inspect: the thread it is on and how long its current step has run. */
  sideInfo(side: SideName) {
    const s = side === 'producer' ? this.producer : this.consumer;
    const threadId = Atomics.load(this.flags.ints, side === 'producer' ? FLAG.PRODUCER_THREAD : FLAG.CONSUMER_THREAD);
    const startedAt = this.flags.floats[STARTED_AT[side]] ?? 0;
    return {
      shape: s.shape,
      state: s.state,
      threadId: threadId || null,
      steps: s.steps,
      currentStepSeconds: startedAt > 0 ? (nowMs() - startedAt) / 1000 : null,
      lastError: s.lastError,
    };
  }

  /** Chunks written but not yet delivered, and the age of the oldest in seconds. */
  lag(): { chunks: number; ageSeconds: number } {
    const chunks = Math.max(0, this.produced - this.delivered);
    const oldest = this.#chunks.get(this.delivered + 1);
    return { chunks, ageSeconds: chunks > 0 && oldest ? (nowMs() - oldest.producedAt) / 1000 : 0 };
  }
}
