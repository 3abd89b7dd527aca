/**
 * Runs inside a pool thread. Piscina calls the default export once per task: a step channel's
 * task holds a step thread and runs the batches that come over its port (each step one bounded
 * call of user code), a loop task holds a loop thread for a session.
 * Every wait here is an Atomics.wait on the session's shared flags, so a stop wakes it at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { FLAG, flagsAt, isStopRequested, markRunning, markStepBegan, markStepEnded, nowMs, waitForSpoolRoom, waitUntil, waitWhilePaused, type SessionFlags } from './flags.js';
import type {
  ChunkRecord,
  ConsumeLoopTask,
  ConsumeStepResult,
  ConsumeStepTask,
  LoopResult,
  ProduceLoopTask,
  ProduceStepResult,
  ProduceStepTask,
  PoolWorkerData,
  ResultRecord,
  StepBatchResult,
  SpoolRemovalResult,
  SpoolRemovalTask,
  StepBatchTask,
  StepOutcome,
  StepChannelTask,
  StepSessionRef,
  ChannelAnswer,
  ChannelClosed,
  ChannelMessage,
  Task,
  TaskError,
  TaskResult,
  TaskSession,
  TaskTiming,
  WorkerEvent,
} from './messages.js';
import type {
  Chunk,
  ConsumerLoopContext,
  PipelineDefinition,
  ProduceStepOutcome,
  ProducerContext,
} from '../pipelines/types.js';
import { LogAppender } from '../spool/appender.js';
import { ChunkReader, type SpooledChunk } from '../spool/chunk-reader.js';
import { MAX_PAYLOAD_BYTES, type LogRecord } from '../spool/log.js';
import { Claims } from './claims.js';
import { packBatch } from './answer-codec.js';
import { unpackStepBatch } from './task-codec.js';
import { publishChunks, publishConsumed, publishProducerDone, publishResults, removeLeftSync } from '../spool/progress.js';
import { removeSpoolSync } from '../sessions/spool.js';
import { DEFAULT_LEND_LIMITS, noteConsumerRun } from '../sessions/pacing.js';
import { NO_GROUPING, ThreadResidents } from './residents-thread.js';
import { QuietWriter } from './quiet-steps.js';
import { ThreadSocketWriter } from '../ws/socket-slots.js';
import { transcriptMessage, writeTextFrame } from '../ws/frames.js';

/** Pipelines by module file: the import under way, then (once it finished) the definition itself. */
const modules = new Map<string, Promise<PipelineDefinition> | PipelineDefinition>();
const { flagsSlab, claimSlab, batchAnswerUs, stepTickMs, socketSlots, residentAnswerMs, residentAnswerMax, residentGrouping, quietSlab, lendConsumer = DEFAULT_LEND_LIMITS } = workerData as PoolWorkerData;
/** Writes step results' frames into their clients' sockets (STEP_SENDS); null when off. */
const socketWriter = socketSlots ? new ThreadSocketWriter(socketSlots) : null;
/** Resident steps need no answer when this thread sent their results itself (pool/quiet-steps.ts). */
const quietWriter = quietSlab && socketWriter && quietSlab.limits.stateBytes > 0 ? new QuietWriter(quietSlab) : null;
/** The batched tasks' claim slots (pool/claims.ts). */
const claims = new Claims(claimSlab);
/** Views of the flags slab, by slot, made once. */
const flagViews: SessionFlags[] = [];

function flagsOf(task: { flagsSlot: number }): SessionFlags {
  return (flagViews[task.flagsSlot] ??= flagsAt(flagsSlab, task.flagsSlot));
}

/** The sessions this thread's steps ran for, by flags slot: decoded once, while the slot's session lasts. */
const sessions: Array<TaskSession | undefined> = [];

/**
 * Descriptions that came with a batch and were not decoded yet, by flags slot: a step channel
 * sends a session's description to a thread once (pool/step-channels.ts), so every one that
 * comes is kept before any step of the batch runs, even for a step taken back before it began.
 * It is decoded when a step of its session runs, so one that fails to decode fails that step.
 */
const described: Array<StepSessionRef | undefined> = [];

function sessionOf(ref: StepSessionRef): TaskSession {
  const known = sessions[ref.flagsSlot];
  if (known?.sessionId === ref.sessionId) return known;
  const kept = described[ref.flagsSlot];
  const bytes = ref.session ?? (kept?.sessionId === ref.sessionId ? kept.session : undefined);
  if (!bytes) throw new Error(`internal error: session ${ref.sessionId} came without its description to a thread that has none`);
  const session = v8.deserialize(bytes) as TaskSession;
  sessions[ref.flagsSlot] = session;
  described[ref.flagsSlot] = undefined;
  return session;
}

/** `value`, or what it resolves to when it is a promise: a synchronous step costs no microtask hop. */
function settle<T>(value: T | PromiseLike<T>): T | Promise<T> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<T>).then === 'function' ? Promise.resolve(value) : (value as T);
}

/** The pipeline in `file`: its definition once imported (a step then awaits nothing), else the import. */
function loadPipeline(file: string): Promise<PipelineDefinition> | PipelineDefinition {
  let loaded = modules.get(file);
  if (!loaded) {
    loaded = import(pathToFileURL(file).href).then((m) => {
      const def = (m.default ?? m) as PipelineDefinition;
      modules.set(file, def);
      return def;
    });
    modules.set(file, loaded);
  }
  return loaded;
}

function post(event: WorkerEvent): void {
  parentPort!.postMessage(event);
}

function toTaskError(err: unknown): TaskError {
  if (err instanceof Error) return { name: err.name, message: err.message || err.name, ...(err.stack ? { stack: err.stack } : {}) };
  return { name: 'Error', message: String(err) };
}

/** Blocks up to `ms`, waking at once when the stop flag is set. */
function sleepOn(flags: SessionFlags, ms: number): boolean {
  if (ms > 0 && !isStopRequested(flags)) Atomics.wait(flags.ints, FLAG.STOP, 0, ms);
  return !isStopRequested(flags);
}

/** How a loop producer's writes go out: appended at once, then reported to the main thread. */
interface LoopWriter {
  appender: LogAppender;
  onWrite: (c: ChunkRecord) => void;
}

/**
 * What every pipeline side's code sees of its session (pipelines/types.ts SideContext). A class,
 * not an object literal: a literal with a getter is defined property by property at run time,
 * for every step.
 */
class SideContextBase {
  readonly sessionId: string;
  readonly url: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  state: unknown;
  /** Private, not protected: a pipeline's code gets this object and must not reach the flags. */
  readonly #flags: SessionFlags;

  constructor(task: TaskSession, flags: SessionFlags, state: unknown) {
    this.sessionId = task.sessionId;
    this.url = task.url;
    this.options = task.options;
    this.input = task.input;
    this.state = state;
    this.#flags = flags;
  }

  get stopRequested(): boolean {
    return isStopRequested(this.#flags);
  }
}

/**
 * The producer's side of the spool. A step producer's chunks are gathered and appended in one
 * write when its burst ends; a loop's each go out at once (it may block for long after a write).
 */
class Producer extends SideContextBase implements ProducerContext {
  /** A step's chunks not yet appended. */
  readonly pending: LogRecord[] = [];
  pendingBytes = 0;
  readonly #task: TaskSession;
  readonly #flags: SessionFlags;
  #nextSeq: number;
  /** Set for a loop producer: appends each write at once and reports it. */
  readonly #loop: LoopWriter | undefined;

  constructor(task: TaskSession, flags: SessionFlags, nextSeq: number, state: unknown, loop?: LoopWriter) {
    super(task, flags, state);
    this.#task = task;
    this.#flags = flags;
    this.#nextSeq = nextSeq;
    this.#loop = loop;
  }

  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  write(data: string | Uint8Array): number {
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(payload instanceof Uint8Array)) throw new TypeError('ctx.write() takes a string or bytes (Uint8Array/Buffer)');
    if (payload.byteLength > MAX_PAYLOAD_BYTES) throw new RangeError(`a chunk may hold at most ${MAX_PAYLOAD_BYTES} bytes`);
    if (!this.#loop) {
      const seq = this.#nextSeq++;
      this.pending.push({ seq, timeMs: nowMs(), payload });
      this.pendingBytes += payload.byteLength;
      return seq;
    }
    // A loop producer blocks here while the spool is at its quota; a step producer is simply
    // not scheduled then (and its burst stops at the room it was given).
    waitForSpoolRoom(this.#flags, this.#nextSeq, this.#task.spoolQuotaChunks);
    const seq = this.#nextSeq++;
    const record = { seq, timeMs: nowMs(), payload };
    this.#loop.appender.append([record]);
    publishChunks(this.#flags, this.#loop.appender.chunkEnd);
    this.#loop.onWrite({ seq, producedAt: record.timeMs, sizeBytes: payload.byteLength });
    return seq;
  }

  sleep(ms: number): boolean {
    return sleepOn(this.#flags, ms);
  }
}

/** A chunk as a consumer sees it. `path` exists only if asked for: the chunk lives inside a segment. */
class ConsumerChunk implements Chunk {
  readonly seq: number;
  readonly #payload: Buffer;
  readonly #dir: string;
  #file: string | null = null;

  constructor(dir: string, c: SpooledChunk) {
    this.seq = c.seq;
    this.#payload = c.payload;
    this.#dir = dir;
  }

  /** A file holding just this chunk, written on first use and removed once the chunk is consumed. */
  get path(): string {
    if (this.#file === null) {
      const file = path.join(this.#dir, `chunk-${this.seq}.bin`);
      fs.writeFileSync(file, this.#payload);
      this.#file = file;
    }
    return this.#file;
  }

  bytes(): Buffer {
    return this.#payload;
  }

  text(): string {
    return this.#payload.toString('utf8');
  }

  release(): void {
    if (this.#file !== null) fs.rmSync(this.#file, { force: true });
    this.#file = null;
  }
}

/**
 * A result as the JSON text the client will receive. Serialised here, in the pool thread, so a
 * value JSON cannot carry (a BigInt, a cycle) fails its own session, not the service.
 */
function toJson(seq: number, data: unknown): string {
  try {
    return JSON.stringify(data ?? null) ?? 'null';
  } catch (err) {
    throw new Error(`the result for chunk ${seq} cannot be sent as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * One producer task. A producer that has nothing to wait for (`delayMs` 0) is stepped again at
 * once, as a burst, until it has written burstMaxChunks chunks, run burstMaxMs, filled the room
 * left under the spool's quotas, or asked to wait: then every chunk of the burst is appended in
 * one write and published. The chunks are on disk before any consumer sees them.
 */
async function produceStep(step: ProduceStepTask, flags: SessionFlags): Promise<ProduceStepResult> {
  const session = sessionOf(step);
  if (isStopRequested(flags)) return { skipped: true, state: step.state, delayMs: 0, done: false, chunks: [], calls: 0, threadId };
  let def = loadPipeline(session.module);
  if (def instanceof Promise) def = await def;
  if (def.producer.shape !== 'step') throw new Error(`producer of ${def.name} is not step-shaped`);
  const ctx = new Producer(session, flags, step.nextSeq, step.state);
  const maxChunks = Math.max(1, Math.min(session.burstMaxChunks, step.roomChunks));
  markRunning(flags, 'producer', threadId);
  const began = nowMs();
  let delayMs = 0;
  let done = false;
  let calls = 0;
  let error: TaskError | undefined;
  try {
    for (;;) {
      calls++;
      markStepBegan(flags, 'producer');
      let stepped;
      try {
        stepped = settle(def.producer.step(ctx));
        if (stepped instanceof Promise) stepped = await stepped;
      } finally {
        markStepEnded(flags, 'producer');
      }
      const outcome = (stepped ?? {}) as ProduceStepOutcome;
      done = outcome.done === true;
      delayMs = typeof outcome.delayMs === 'number' && outcome.delayMs > 0 ? outcome.delayMs : 0;
      if (done || delayMs > 0 || isStopRequested(flags)) break;
      if (ctx.pending.length >= maxChunks || ctx.pendingBytes >= step.roomBytes || nowMs() - began >= session.burstMaxMs) break;
    }
  } catch (err) {
    error = toTaskError(err);
  }
  // Whatever the steps wrote before a throw is still the session's: append it. The main thread
  // publishes it when this task's answer arrives (spool/progress.ts).
  let chunks: ChunkRecord[] = [];
  let spooled: SpooledChunk[] = [];
  let chunkLog;
  try {
    if (ctx.pending.length > 0) {
      const appender = new LogAppender(session.spoolDir, 'chunks', flags, session.log);
      try {
        const positions = appender.append(ctx.pending);
        spooled = ctx.pending.map((r, i) => ({ seq: r.seq, timeMs: r.timeMs, payload: asBuffer(r.payload), position: positions[i]! }));
        chunkLog = appender.chunkEnd;
      } finally {
        appender.close();
      }
      chunks = ctx.pending.map((r) => ({ seq: r.seq, producedAt: r.timeMs, sizeBytes: r.payload.byteLength }));
    }
  } catch (err) {
    error ??= toTaskError(err);
    done = false;
  } finally {
    markRunning(flags, 'producer', 0);
  }
  const result: ProduceStepResult = { skipped: false, state: ctx.state, delayMs, done, chunks, calls, threadId };
  if (chunkLog) result.chunkLog = chunkLog;
  if (error) result.error = error;
  if (step.consumeAfter) {
    // The lent consumer takes exactly the chunks this task wrote, from memory (none if it failed).
    result.consumed =
      spooled.length > 0 && !error
        ? await consumeChunks(session, def, step.consumerState, spooled.length, (i) => spooled[i]!, flags)
        : { skipped: false, state: step.consumerState, results: [], threadId };
  }
  return result;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function consumeStep(step: ConsumeStepTask, flags: SessionFlags): Promise<ConsumeStepResult> {
  if (isStopRequested(flags)) return { skipped: true, state: step.state, results: [], threadId };
  const session = sessionOf(step);
  let def = loadPipeline(session.module);
  if (def instanceof Promise) def = await def;
  const reader = new ChunkReader(session.spoolDir, flags);
  try {
    return await consumeChunks(session, def, step.state, step.seqs.length, (i) => reader.read(step.seqs[i]!), flags, reader);
  } finally {
    reader.close();
  }
}

/**
 * Runs the step consumer on `count` chunks in order, stopping early when a stop is requested;
 * the results go into the results log in one write. The main thread publishes how far it got.
 */
async function consumeChunks(
  task: TaskSession,
  def: PipelineDefinition,
  state: unknown,
  count: number,
  chunkAt: (i: number) => SpooledChunk,
  flags: SessionFlags,
  reader = new ChunkReader(task.spoolDir, flags),
): Promise<ConsumeStepResult> {
  const consumer = def.consumer;
  if (consumer.shape !== 'step') throw new Error(`consumer of ${def.name} is not step-shaped`);
  const ctx = new SideContextBase(task, flags, state);
  const results: ResultRecord[] = [];
  const taken: SpooledChunk[] = [];
  let error: TaskError | undefined;
  markRunning(flags, 'consumer', threadId);
  // The consumer's own calls, without the service's work around them: whether it may be lent.
  let ownMs = 0;
  try {
    for (let i = 0; i < count; i++) {
      if (isStopRequested(flags)) break;
      const spooled = chunkAt(i);
      const chunk = new ConsumerChunk(task.spoolDir, spooled);
      const takenAt = markStepBegan(flags, 'consumer');
      try {
        let data = settle(consumer.step(ctx, chunk));
        if (data instanceof Promise) data = await data;
        const doneAt = nowMs();
        ownMs += doneAt - takenAt;
        results.push({ seq: spooled.seq, json: toJson(spooled.seq, data), takenAt, doneAt });
        taken.push(spooled);
      } finally {
        markStepEnded(flags, 'consumer');
        chunk.release();
      }
    }
  } catch (err) {
    error = toTaskError(err);
  }
  noteConsumerRun(flags, ownMs, results.length, lendConsumer);
  const out: ConsumeStepResult = { skipped: false, state: ctx.state, results, threadId };
  try {
    if (results.length > 0) {
      const appender = new LogAppender(task.spoolDir, 'results', flags, task.log);
      try {
        appendResults(appender, results, taken);
        out.resultLog = appender.resultEnd;
      } finally {
        appender.close();
      }
      for (const c of taken) reader.consumed(c);
      out.readMark = reader.takeMark();
    }
  } catch (err) {
    error ??= toTaskError(err);
    results.length = 0;
    delete out.resultLog;
    delete out.readMark;
  } finally {
    markRunning(flags, 'consumer', 0);
  }
  // Sent whole, every one: nobody waits for this answer to see them (a rest left waits for the main thread).
  if (out.resultLog) out.sentAll = sendResults(task.sessionId, flags, results, taken) === results.length && !socketWriter?.restLeft;
  if (error) out.error = error;
  return out;
}

/**
 * Writes the frames of results just appended into the session's client's socket, when its slot
 * lets this thread (ws/socket-slots.ts); those it does not write the main thread sends when this
 * step's answer arrives.
 */
function sendResults(sessionId: string, flags: SessionFlags, results: readonly ResultRecord[], chunks: readonly SpooledChunk[]): number {
  if (!socketWriter) return 0;
  const slot = Atomics.load(flags.ints, FLAG.SEND_SLOT) - 1;
  const first = results[0]!.seq;
  if (slot < 0 || results[results.length - 1]!.seq - first !== results.length - 1) return 0;
  try {
    return socketWriter.write(slot, Atomics.load(flags.ints, FLAG.SEND_ID), first, results.length, (i, into, at) =>
      writeTextFrame(transcriptMessage(sessionId, results[i]!.seq, results[i]!.json, chunks[i]!.timeMs), into, at),
    );
  } catch {
    // Whatever went wrong here, the main thread sends them (the slot was given back: socket-slots.ts).
    return 0;
  }
}

/** Appends results to the results log in one write; each carries its chunk's time. */
function appendResults(appender: LogAppender, results: readonly ResultRecord[], chunks: readonly SpooledChunk[]): void {
  appender.append(results.map((r, i) => ({ seq: r.seq, timeMs: chunks[i]!.timeMs, payload: Buffer.from(r.json) })));
}

async function produceLoop(task: ProduceLoopTask, flags: SessionFlags): Promise<LoopResult> {
  const def = await loadPipeline(task.module);
  if (def.producer.shape !== 'loop') throw new Error(`producer of ${def.name} is not loop-shaped`);
  const appender = new LogAppender(task.spoolDir, 'chunks', flags, task.log);
  const ctx = new Producer(task, flags, task.nextSeq, undefined, {
    appender,
    onWrite: (chunk) => post({ type: 'chunk', sessionId: task.sessionId, chunk }),
  });
  markRunning(flags, 'producer', threadId);
  markStepBegan(flags, 'producer');
  try {
    await def.producer.run(ctx);
    return { lastSeq: ctx.lastSeq };
  } catch (err) {
    return { lastSeq: ctx.lastSeq, error: toTaskError(err) };
  } finally {
    appender.close();
    publishProducerDone(flags);
    markRunning(flags, 'producer', 0);
  }
}

class LoopConsumerContext extends SideContextBase implements ConsumerLoopContext {
  readonly #task: ConsumeLoopTask;
  readonly #flags: SessionFlags;
  readonly #reader: ChunkReader;
  readonly #results: LogAppender;
  /** Seq the next call of next() returns. */
  #nextSeq: number;
  /** The chunk taken by next() and not yet answered by emit(), and when it was taken. */
  #open: { spooled: SpooledChunk; chunk: ConsumerChunk } | null = null;
  #openAt = 0;
  lastEmitted: number;

  constructor(task: ConsumeLoopTask, flags: SessionFlags) {
    super(task, flags, undefined);
    this.#task = task;
    this.#flags = flags;
    this.#reader = new ChunkReader(task.spoolDir, flags);
    this.#results = new LogAppender(task.spoolDir, 'results', flags, task.log);
    this.#nextSeq = task.nextSeq;
    this.lastEmitted = task.nextSeq - 1;
  }

  next(timeoutMs?: number): Chunk | null {
    if (this.#open) this.emit(null);
    // The client cannot take more results: leave the chunks on disk until it can.
    waitWhilePaused(this.#flags, FLAG.PAUSE_CONSUMER);
    if (!this.#waitForChunk(timeoutMs === undefined ? Infinity : nowMs() + timeoutMs, true)) return null;
    const spooled = this.#reader.read(this.#nextSeq++);
    const chunk = new ConsumerChunk(this.#task.spoolDir, spooled);
    this.#open = { spooled, chunk };
    this.#openAt = nowMs();
    return chunk;
  }

  emit(data: unknown): void {
    const open = this.#open;
    if (!open) {
      throw new Error(
        this.lastEmitted >= this.#task.nextSeq
          ? `emit() called twice for chunk ${this.lastEmitted}: each chunk from next() gets exactly one result`
          : 'emit() called before next() returned a chunk',
      );
    }
    const seq = open.spooled.seq;
    const json = toJson(seq, data);
    this.#open = null;
    open.chunk.release();
    const result = { seq, json, takenAt: this.#openAt, doneAt: nowMs() };
    // A loop publishes its own progress: the result is logged, then counted as consumed.
    appendResults(this.#results, [result], [open.spooled]);
    publishResults(this.#flags, this.#results.resultEnd);
    this.#reader.consumed(open.spooled);
    const mark = this.#reader.takeMark();
    publishConsumed(this.#flags, mark);
    removeLeftSync(this.#task.spoolDir, this.#task.keep, mark.left);
    post({ type: 'result', sessionId: this.sessionId, result });
    this.lastEmitted = seq;
  }

  chunkReady(timeoutMs = 0): boolean {
    // Not ended by the producer finishing: a caller polling something of its own waits out its
    // timeout rather than spin.
    return this.#waitForChunk(nowMs() + timeoutMs, false);
  }

  /**
   * Waits until the next chunk is complete (true), the session stops, `deadline` (epoch ms)
   * passes, or — when `endsWithProducer` — the producer finished with no chunk left (false). A
   * commit, or a stop (which wakes every slot), ends the wait early.
   */
  #waitForChunk(deadline: number, endsWithProducer: boolean): boolean {
    const ints = this.#flags.ints;
    const committed = () => Atomics.load(ints, FLAG.COMMITTED) >= this.#nextSeq;
    const producerDone = () => endsWithProducer && Atomics.load(ints, FLAG.PRODUCER_DONE) === 1;
    waitUntil(this.#flags, () => isStopRequested(this.#flags) || committed() || producerDone(), deadline);
    return !isStopRequested(this.#flags) && committed();
  }

  sleep(ms: number): boolean {
    return sleepOn(this.#flags, ms);
  }

  /** Answers a chunk the loop took but returned without emitting, and lets go of the files. */
  finish(): void {
    if (this.#open && !this.stopRequested) this.emit(null);
    this.close();
  }

  close(): void {
    this.#open?.chunk.release();
    this.#reader.close();
    this.#results.close();
  }
}

async function consumeLoop(task: ConsumeLoopTask, flags: SessionFlags): Promise<LoopResult> {
  const def = await loadPipeline(task.module);
  if (def.consumer.shape !== 'loop') throw new Error(`consumer of ${def.name} is not loop-shaped`);
  const ctx = new LoopConsumerContext(task, flags);
  markRunning(flags, 'consumer', threadId);
  markStepBegan(flags, 'consumer');
  try {
    await def.consumer.run(ctx);
    ctx.finish();
    return { lastSeq: ctx.lastEmitted };
  } catch (err) {
    return { lastSeq: ctx.lastEmitted, error: toTaskError(err) };
  } finally {
    ctx.close();
    markRunning(flags, 'consumer', 0);
  }
}

/** Stamps every result with when it ran here, so the main thread can split queue wait from run time. */
export default async function runTask(task: Task): Promise<TaskResult | ChannelClosed> {
  if (task.kind === 'step-channel') return serveChannel(task);
  const startedAt = nowMs();
  const result = await dispatch(task);
  result.timing = { startedAt, finishedAt: nowMs() };
  return result;
}

/**
 * The same entry under the name a loop consumer's task is run by, so that the loop pool's
 * balancer can tell it from a producer's (worker-pool.ts: loopBalancer).
 */
export const consumeLoopTask = runTask;

/**
 * Holds this thread for a step channel (pool/step-channels.ts): runs each job that comes over its
 * port, one at a time, and answers it there, until the main thread closes the port.
 */
function serveChannel(task: StepChannelTask): Promise<ChannelClosed> {
  const port = task.port;
  const answer = (a: ChannelAnswer) => port.postMessage(a);
  const postPart = (outcomes: ReadonlyArray<StepOutcome | null>, from: number, to: number, timing: TaskTiming | null) => {
    const packed = packBatch(outcomes, from, to, timing);
    port.postMessage(packed satisfies ChannelAnswer, [packed[0].buffer as ArrayBuffer]);
  };
  const residents = new ThreadResidents(flagsSlab, stepTickMs, batchAnswerUs, residentAnswerMs ?? 0, residentAnswerMax ?? Infinity, residentGrouping ?? NO_GROUPING, produceStep, (a, transfer) => port.postMessage(a satisfies ChannelAnswer, transfer), toTaskError, quietWriter);
  port.on('message', (message: ChannelMessage) => {
    // Resident steps are not jobs: they run on this thread's own ticks (residents-thread.ts).
    if (!Array.isArray(message) && message.kind === 'residents') {
      for (const m of message.messages) residents.handle(m);
      return;
    }
    const startedAt = nowMs();
    // Answers gathered go before the job, which may hold this thread longer than their gathering.
    residents.postGathered();
    const job = Array.isArray(message) ? unpackStepBatch(message) : message;
    // A batch's parts go as its steps end (runBatch); its last part is posted here.
    let posted = 0;
    const work =
      job.kind === 'step-batch'
        ? runBatch(job, batchAnswerUs > 0 ? (outcomes, to) => {
            postPart(outcomes, posted, to, null);
            posted = to;
          } : null)
        : dispatch(job);
    work.then(
      (result) => {
        const timing = { startedAt, finishedAt: nowMs() };
        if (job.kind === 'step-batch') {
          const outcomes = (result as StepBatchResult).outcomes;
          postPart(outcomes, posted, outcomes.length, timing);
        } else {
          result.timing = timing;
          answer({ ok: result });
        }
      },
      (err: unknown) => answer({ thrown: toTaskError(err) }),
    );
  });
  return new Promise((resolve) =>
    port.once('close', () => {
      residents.close();
      resolve({ threadId });
    }),
  );
}

function dispatch(task: Exclude<Task, StepChannelTask>): Promise<TaskResult> {
  switch (task.kind) {
    case 'probe':
      return Promise.resolve({ threadId });
    case 'step-batch':
      return runBatch(task);
    case 'remove-spools':
      return Promise.resolve(removeSpools(task));
    case 'produce-loop':
      return produceLoop(task, flagsOf(task));
    case 'consume-loop':
      return consumeLoop(task, flagsOf(task));
  }
}

/** Removes ended sessions' spool folders, each on its own: one that fails leaves the others be. */
function removeSpools(task: SpoolRemovalTask): SpoolRemovalResult {
  const errors = task.dirs.map((dir) => {
    try {
      removeSpoolSync(dir);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  });
  return { errors };
}

/**
 * Runs a batch's steps one after another, claiming each before it begins (the main thread may
 * take back those not begun when one stalls). A step's own failure is in its outcome; the others
 * run on regardless. With `part`, the outcomes of the first `to` entries are handed to it once
 * `batchAnswerUs` passed since the batch began or since the last part, while more entries
 * follow: a full batch's first results leave while its last steps run, instead of all waiting
 * for the last one.
 */
async function runBatch(task: StepBatchTask, part: ((outcomes: ReadonlyArray<StepOutcome | null>, to: number) => void) | null = null): Promise<StepBatchResult> {
  const slot = task.claimSlot;
  const partMs = batchAnswerUs / 1000;
  let partFrom = nowMs();
  const outcomes: Array<StepOutcome | null> = new Array<StepOutcome | null>(task.entries.length).fill(null);
  // The channel counts every description it sent as this thread's from now on (see `described`).
  for (const entry of task.entries) {
    if (entry.session && sessions[entry.flagsSlot]?.sessionId !== entry.sessionId) described[entry.flagsSlot] = entry;
  }
  for (;;) {
    const i = claims.claimNext(slot);
    if (i >= task.entries.length) break;
    const entry = task.entries[i]!;
    const startedAt = nowMs();
    claims.setEntryStartedAt(slot, startedAt);
    try {
      const flags = flagsOf(entry);
      const ok = entry.kind === 'produce-step' ? await produceStep(entry, flags) : await consumeStep(entry, flags);
      ok.timing = { startedAt, finishedAt: nowMs() };
      outcomes[i] = { ok };
    } catch (err) {
      outcomes[i] = { thrown: toTaskError(err) };
    }
    if (part && i + 1 < task.entries.length) {
      const now = nowMs();
      if (now - partFrom >= partMs) {
        part(outcomes, i + 1);
        partFrom = now;
      }
    }
  }
  return { outcomes };
}
