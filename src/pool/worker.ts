/**
 * Runs inside a pool thread. Piscina calls the default export once per task; a step task
 * returns after one bounded call of user code, a loop task holds this thread for a session.
 * Every wait here is an Atomics.wait on the session's shared flags, so a stop wakes it at once.
 */
import fs from 'node:fs';
import { parentPort, threadId } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { FLAG, STARTED_AT, flagsFrom, isStopRequested, nowMs, waitForSpoolRoom, waitWhilePaused, type SessionFlags } from './flags.js';
import type {
  ChunkRecord,
  ConsumeLoopTask,
  ConsumeStepResult,
  ConsumeStepTask,
  LoopResult,
  ProduceLoopTask,
  ProduceStepResult,
  ProduceStepTask,
  ResultRecord,
  Task,
  TaskError,
  TaskResult,
  TaskSession,
  WorkerEvent,
} from './messages.js';
import type {
  Chunk,
  ConsumerLoopContext,
  PipelineDefinition,
  ProduceStepOutcome,
  ProducerContext,
} from '../pipelines/types.js';
import { chunkPath, tmpChunkPath } from '../sessions/spool.js';

const modules = new Map<string, Promise<PipelineDefinition>>();

function loadPipeline(file: string): Promise<PipelineDefinition> {
  let loaded = modules.get(file);
  if (!loaded) {
    loaded = import(pathToFileURL(file).href).then((m) => (m.default ?? m) as PipelineDefinition);
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

class Producer implements ProducerContext {
  readonly sessionId: string;
  readonly url: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  state: unknown;
  readonly written: ChunkRecord[] = [];
  readonly #task: TaskSession;
  readonly #flags: SessionFlags;
  #nextSeq: number;
  readonly #onWrite: ((c: ChunkRecord) => void) | undefined;

  constructor(task: TaskSession, flags: SessionFlags, nextSeq: number, state: unknown, onWrite?: (c: ChunkRecord) => void) {
    this.sessionId = task.sessionId;
    this.url = task.url;
    this.options = task.options;
    this.input = task.input;
    this.state = state;
    this.#task = task;
    this.#flags = flags;
    this.#nextSeq = nextSeq;
    this.#onWrite = onWrite;
  }

  get stopRequested(): boolean {
    return isStopRequested(this.#flags);
  }

  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  write(data: string | Uint8Array): number {
    // A loop producer blocks here while the spool is at its quota; a step producer is simply
    // not scheduled then, so it never blocks in a write.
    if (this.#onWrite) waitForSpoolRoom(this.#flags, this.#nextSeq, this.#task.spoolQuotaChunks);
    const seq = this.#nextSeq++;
    const tmp = tmpChunkPath(this.#task.spoolDir, seq);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const fd = fs.openSync(tmp, 'w');
    try {
      // writeSync may write less than asked: a short chunk must never be renamed into view.
      for (let off = 0; off < bytes.byteLength; ) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
      if (this.#task.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const sizeBytes = bytes.byteLength;
    fs.renameSync(tmp, chunkPath(this.#task.spoolDir, seq));
    const record: ChunkRecord = { seq, producedAt: nowMs(), sizeBytes };
    Atomics.store(this.#flags.ints, FLAG.COMMITTED, seq);
    Atomics.notify(this.#flags.ints, FLAG.COMMITTED);
    // A step returns what it wrote; a loop reports each chunk as it goes and keeps no list.
    if (this.#onWrite) this.#onWrite(record);
    else this.written.push(record);
    return seq;
  }

  sleep(ms: number): boolean {
    return sleepOn(this.#flags, ms);
  }
}

function makeChunk(dir: string, seq: number): Chunk {
  const file = chunkPath(dir, seq);
  return {
    seq,
    path: file,
    bytes: () => fs.readFileSync(file),
    text: () => fs.readFileSync(file, 'utf8'),
  };
}

/** The consumer is done with chunk `seq`: its file goes, and a loop producer waiting for room wakes. */
function consumed(task: TaskSession, flags: SessionFlags, seq: number): void {
  if (!task.keep) {
    // One unlink; rmSync would lstat first. A chunk already gone is fine.
    try {
      fs.unlinkSync(chunkPath(task.spoolDir, seq));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  Atomics.store(flags.ints, FLAG.CONSUMED, seq);
  Atomics.notify(flags.ints, FLAG.CONSUMED);
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

function markBusy(flags: SessionFlags, side: 'producer' | 'consumer'): void {
  Atomics.store(flags.ints, side === 'producer' ? FLAG.PRODUCER_THREAD : FLAG.CONSUMER_THREAD, threadId);
  flags.floats[STARTED_AT[side]] = nowMs();
}

function markIdle(flags: SessionFlags, side: 'producer' | 'consumer'): void {
  Atomics.store(flags.ints, side === 'producer' ? FLAG.PRODUCER_THREAD : FLAG.CONSUMER_THREAD, 0);
  flags.floats[STARTED_AT[side]] = 0;
}

async function produceStep(task: ProduceStepTask, flags: SessionFlags): Promise<ProduceStepResult> {
  const base = { state: task.state, delayMs: 0, done: false, threadId };
  if (isStopRequested(flags)) return { ...base, skipped: true, chunks: [] };
  const def = await loadPipeline(task.module);
  if (def.producer.shape !== 'step') throw new Error(`producer of ${def.name} is not step-shaped`);
  const ctx = new Producer(task, flags, task.nextSeq, task.state);
  markBusy(flags, 'producer');
  let result: ProduceStepResult;
  try {
    const outcome = ((await def.producer.step(ctx)) ?? {}) as ProduceStepOutcome;
    const done = outcome.done === true;
    if (done) {
      Atomics.store(flags.ints, FLAG.PRODUCER_DONE, 1);
      Atomics.notify(flags.ints, FLAG.COMMITTED);
    }
    const delayMs = typeof outcome.delayMs === 'number' && outcome.delayMs > 0 ? outcome.delayMs : 0;
    result = { ...base, skipped: false, state: ctx.state, delayMs, done, chunks: ctx.written };
  } catch (err) {
    result = { ...base, skipped: false, state: ctx.state, chunks: ctx.written, error: toTaskError(err) };
  } finally {
    markIdle(flags, 'producer');
  }
  if (task.consumeAfter) {
    // The lent consumer takes exactly the chunks this step wrote (none if it wrote none).
    const seqs = result.chunks.map((c) => c.seq);
    result.consumed =
      seqs.length > 0 && !result.error
        ? await consumeSeqs(task, def, task.consumerState, seqs, flags)
        : { skipped: false, state: task.consumerState, results: [], threadId, elapsedMs: 0 };
  }
  return result;
}

async function consumeStep(task: ConsumeStepTask, flags: SessionFlags): Promise<ConsumeStepResult> {
  if (isStopRequested(flags)) return { skipped: true, state: task.state, results: [], threadId, elapsedMs: 0 };
  return consumeSeqs(task, await loadPipeline(task.module), task.state, task.seqs, flags);
}

/** Runs the step consumer on `seqs` in order, stopping early when a stop is requested. */
async function consumeSeqs(
  task: TaskSession,
  def: PipelineDefinition,
  state: unknown,
  seqs: number[],
  flags: SessionFlags,
): Promise<ConsumeStepResult> {
  const results: ResultRecord[] = [];
  const consumer = def.consumer;
  if (consumer.shape !== 'step') throw new Error(`consumer of ${def.name} is not step-shaped`);
  const ctx = {
    sessionId: task.sessionId,
    url: task.url,
    options: task.options,
    input: task.input,
    state,
    get stopRequested() {
      return isStopRequested(flags);
    },
  };
  markBusy(flags, 'consumer');
  const began = performance.now();
  try {
    for (const seq of seqs) {
      if (isStopRequested(flags)) break;
      const takenAt = nowMs();
      const data = await consumer.step(ctx, makeChunk(task.spoolDir, seq));
      results.push({ seq, json: toJson(seq, data), takenAt, doneAt: nowMs() });
      consumed(task, flags, seq);
    }
    return { skipped: false, state: ctx.state, results, threadId, elapsedMs: performance.now() - began };
  } catch (err) {
    return { skipped: false, state: ctx.state, results, threadId, elapsedMs: performance.now() - began, error: toTaskError(err) };
  } finally {
    markIdle(flags, 'consumer');
  }
}

async function produceLoop(task: ProduceLoopTask, flags: SessionFlags): Promise<LoopResult> {
  const def = await loadPipeline(task.module);
  if (def.producer.shape !== 'loop') throw new Error(`producer of ${def.name} is not loop-shaped`);
  const ctx = new Producer(task, flags, task.nextSeq, undefined, (chunk) =>
    post({ type: 'chunk', sessionId: task.sessionId, chunk }),
  );
  markBusy(flags, 'producer');
  try {
    await def.producer.run(ctx);
    return { lastSeq: ctx.lastSeq };
  } catch (err) {
    return { lastSeq: ctx.lastSeq, error: toTaskError(err) };
  } finally {
    Atomics.store(flags.ints, FLAG.PRODUCER_DONE, 1);
    Atomics.notify(flags.ints, FLAG.COMMITTED);
    markIdle(flags, 'producer');
  }
}

class LoopConsumerContext implements ConsumerLoopContext {
  readonly sessionId: string;
  readonly url: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly input: unknown;
  state: unknown = undefined;
  readonly #task: ConsumeLoopTask;
  readonly #flags: SessionFlags;
  /** Seq the next call of next() returns. */
  #nextSeq: number;
  /** Seq taken by next() and not yet answered by emit() (0 = none), and when it was taken. */
  #open = 0;
  #openAt = 0;
  lastEmitted: number;

  constructor(task: ConsumeLoopTask, flags: SessionFlags) {
    this.sessionId = task.sessionId;
    this.url = task.url;
    this.options = task.options;
    this.input = task.input;
    this.#task = task;
    this.#flags = flags;
    this.#nextSeq = task.nextSeq;
    this.lastEmitted = task.nextSeq - 1;
  }

  get stopRequested(): boolean {
    return isStopRequested(this.#flags);
  }

  next(timeoutMs?: number): Chunk | null {
    if (this.#open) this.emit(null);
    // The client cannot take more results: leave the chunks on disk until it can.
    waitWhilePaused(this.#flags, FLAG.PAUSE_CONSUMER);
    const ints = this.#flags.ints;
    const deadline = timeoutMs === undefined ? Infinity : nowMs() + timeoutMs;
    for (;;) {
      if (isStopRequested(this.#flags)) return null;
      const committed = Atomics.load(ints, FLAG.COMMITTED);
      if (committed >= this.#nextSeq) break;
      if (Atomics.load(ints, FLAG.PRODUCER_DONE) === 1 && Atomics.load(ints, FLAG.COMMITTED) < this.#nextSeq) return null;
      const left = deadline - nowMs();
      if (left <= 0) return null;
      Atomics.wait(ints, FLAG.COMMITTED, committed, left === Infinity ? undefined : left);
    }
    const seq = this.#nextSeq++;
    this.#open = seq;
    this.#openAt = nowMs();
    const chunk = makeChunk(this.#task.spoolDir, seq);
    // Once emit() answered a chunk its file is gone: say that, not ENOENT.
    const answered = (read: () => Buffer | string) => () => {
      if (this.#open !== seq) throw new Error(`chunk ${seq} was read after emit() answered it; read a chunk before emitting its one result`);
      return read();
    };
    return { ...chunk, bytes: answered(chunk.bytes) as () => Buffer, text: answered(chunk.text) as () => string };
  }

  emit(data: unknown): void {
    const seq = this.#open;
    if (!seq) {
      if (this.lastEmitted >= this.#task.nextSeq) throw new Error(`emit() called twice for chunk ${this.lastEmitted}; each chunk from next() gets exactly one result`);
      throw new Error('emit() called without a chunk from next()');
    }
    const json = toJson(seq, data);
    this.#open = 0;
    const result = { seq, json, takenAt: this.#openAt, doneAt: nowMs() };
    post({ type: 'result', sessionId: this.sessionId, result });
    this.lastEmitted = seq;
    consumed(this.#task, this.#flags, seq);
  }

  sleep(ms: number): boolean {
    return sleepOn(this.#flags, ms);
  }

  /** Answers a chunk the loop took but returned without emitting. */
  finish(): void {
    if (this.#open && !this.stopRequested) this.emit(null);
  }
}

async function consumeLoop(task: ConsumeLoopTask, flags: SessionFlags): Promise<LoopResult> {
  const def = await loadPipeline(task.module);
  if (def.consumer.shape !== 'loop') throw new Error(`consumer of ${def.name} is not loop-shaped`);
  const ctx = new LoopConsumerContext(task, flags);
  markBusy(flags, 'consumer');
  try {
    await def.consumer.run(ctx);
    ctx.finish();
    return { lastSeq: ctx.lastEmitted };
  } catch (err) {
    return { lastSeq: ctx.lastEmitted, error: toTaskError(err) };
  } finally {
    markIdle(flags, 'consumer');
  }
}

/** Stamps every result with when it ran here, so the main thread can split queue wait from run time. */
export default async function runTask(task: Task): Promise<TaskResult> {
  const startedAt = nowMs();
  const result = await dispatch(task);
  result.timing = { startedAt, finishedAt: nowMs() };
  return result;
}

function dispatch(task: Task): Promise<TaskResult> {
  if (task.kind === 'probe') return Promise.resolve({ threadId });
  const flags = flagsFrom(task.flags);
  switch (task.kind) {
    case 'produce-step':
      return produceStep(task, flags);
    case 'consume-step':
      return consumeStep(task, flags);
    case 'produce-loop':
      return produceLoop(task, flags);
    case 'consume-loop':
      return consumeLoop(task, flags);
  }
}
