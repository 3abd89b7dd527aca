/**
 * Every message that crosses between the main thread and a pool thread, in one place:
 * the tasks the main thread runs, what they return, and the events a loop posts while it runs.
 */

import type { MessagePort } from 'node:worker_threads';
import type { LogPolicy } from '../spool/appender.js';
import type { PackedBatch } from './answer-codec.js';
import type { PackedStepBatch } from './task-codec.js';
import type { ChunkLogEnd, ReadMark, ResultLogEnd } from '../spool/progress.js';
import type { SocketSlotBuffers } from '../ws/socket-slots.js';
import type { ResidentGrouping } from './residents-thread.js';
import type { QuietSlabInfo } from './quiet-steps.js';
import type { LendLimits } from '../sessions/pacing.js';

/** What every task carries about its session. */
export interface TaskSession {
  /** Absolute path of the pipeline module. */
  module: string;
  sessionId: string;
  /** The session's slot in the flags slab (pool/flags.ts FlagsSlab) the threads got at start. */
  flagsSlot: number;
  spoolDir: string;
  url: string;
  input: unknown;
  options: Record<string, unknown>;
  /** Keep chunk segments after consumption (the spool outlives the session). */
  keep: boolean;
  /** How the spool's logs are written and kept. */
  log: LogPolicy;
  /** SPOOL_QUOTA_CHUNKS: a loop producer's write() blocks while this many chunks wait. */
  spoolQuotaChunks: number;
  /** Longest burst a step producer with nothing to wait for runs in one task (see StepProducer). */
  burstMaxChunks: number;
  burstMaxMs: number;
}

/**
 * How a step names its session: the session's TaskSession, serialised (v8) once when the session
 * starts, travels as bytes — a copy, where the object would be cloned field by field for every
 * step — and each thread keeps the last one it decoded per flags slot, keyed by the session id.
 * A step channel sends the bytes only to a thread that does not have them yet
 * (pool/step-channels.ts): `session` is then left out.
 */
export interface StepSessionRef {
  sessionId: string;
  flagsSlot: number;
  session?: Uint8Array | undefined;
}

export interface ProduceStepTask extends StepSessionRef {
  kind: 'produce-step';
  state: unknown;
  nextSeq: number;
  /**
   * The step consumer was idle with nothing queued, so it was lent to this task: the chunks the
   * step writes are consumed in the same task, in order, sparing a second hand-off per chunk.
   */
  consumeAfter: boolean;
  /** The consumer's state when `consumeAfter`. */
  consumerState: unknown;
  /** Room left under the spool's quotas: a burst never writes past it. */
  roomChunks: number;
  roomBytes: number;
}

export interface ConsumeStepTask extends StepSessionRef {
  kind: 'consume-step';
  state: unknown;
  seqs: number[];
}

/**
 * A step task's own fields, given to the two builders below, which write every field of the task
 * in one object literal. Spreading the session's ref and adding fields (`{ ...ref, kind, … }`)
 * gives each object a hidden class of its own in Node 20's V8 once the spread has been run a few
 * times: every session's task then had its own, and each store into one (a step's answer taken in,
 * for every result) missed V8's inline caches (docs/PERFORMANCE.md, "One hidden class per task").
 */
export type ProduceStepFields = Omit<ProduceStepTask, keyof StepSessionRef | 'kind'>;

export function produceStepTask(ref: StepSessionRef, f: ProduceStepFields): ProduceStepTask {
  return {
    kind: 'produce-step',
    sessionId: ref.sessionId,
    flagsSlot: ref.flagsSlot,
    session: ref.session,
    state: f.state,
    nextSeq: f.nextSeq,
    consumeAfter: f.consumeAfter,
    consumerState: f.consumerState,
    roomChunks: f.roomChunks,
    roomBytes: f.roomBytes,
  };
}

export function consumeStepTask(ref: StepSessionRef, state: unknown, seqs: number[]): ConsumeStepTask {
  return { kind: 'consume-step', sessionId: ref.sessionId, flagsSlot: ref.flagsSlot, session: ref.session, state, seqs };
}

export interface ProduceLoopTask extends TaskSession {
  kind: 'produce-loop';
  nextSeq: number;
}

export interface ConsumeLoopTask extends TaskSession {
  kind: 'consume-loop';
  nextSeq: number;
}

/** Runs no user code: proves the step pool can take a task and run it (GET /readyz). */
export interface ProbeTask {
  kind: 'probe';
}

export interface ProbeResult {
  threadId: number;
  timing?: TaskTiming;
}

export type StepTask = ProduceStepTask | ConsumeStepTask;
export type LoopTask = ProduceLoopTask | ConsumeLoopTask;

/**
 * Steps of many sessions run one after another in one task (pool/step-batcher.ts). The thread
 * claims entry i by incrementing the Int32 of the task's claim slot before running it, and notes
 * when it began it in the slot's Float64, so the main thread can see a stalled step and take
 * back the entries not yet begun.
 */
export interface StepBatchTask {
  kind: 'step-batch';
  entries: StepTask[];
  /** The task's slot in the claim slab (pool/step-batcher.ts ClaimSlab) the threads got at start. */
  claimSlot: number;
}

/**
 * Spool folders of ended sessions to remove (sessions/spool-remover.ts), many in one task so the
 * main thread does no file work for a STOP. Runs no user code.
 */
export interface SpoolRemovalTask {
  kind: 'remove-spools';
  dirs: string[];
}

export interface SpoolRemovalResult {
  /** By folder: null when it is gone, else why it could not be removed. */
  errors: Array<string | null>;
  timing?: TaskTiming;
}

/**
 * Holds a step-pool thread for as long as `port` is open (pool/step-channels.ts): the thread
 * runs the jobs that come over it one at a time and answers each on it.
 */
export interface StepChannelTask {
  kind: 'step-channel';
  port: MessagePort;
}

/**
 * A step producer (with its lent consumer) handed to a step thread to keep: the thread runs its
 * steps on its own schedule from `dueAt` on, until it hands it back (pool/residents-thread.ts).
 * `step` carries the session's description, its producer's and consumer's states and next seq.
 */
export interface ResidentAdopt {
  kind: 'adopt';
  token: number;
  step: ProduceStepTask;
  /** When its first step here is due, epoch ms. */
  dueAt: number;
  /** PRODUCER_RATE_SLACK_MS, for its next due times (sessions/pacing.ts). */
  rateSlackMs: number;
}

/**
 * How a resident's answer ended (ResidentAnswers): `RAN`, a step ran and the thread keeps it;
 * `HANDED_BACK`, a step ran and its answer is the last (its session stops, pauses, failed, is done,
 * wants no wait, or its consumer was slow): the main thread goes on from it as after a batch's
 * step; `RETURNED`, given back without a step (a stop or pause seen before it, or a release).
 */
export const RESIDENT_END = { RAN: 0, HANDED_BACK: 1, RETURNED: 2 } as const;

/** The main thread lets go of a resident (its session stops): the thread drops it and says so. */
export interface ResidentRelease {
  kind: 'release';
  token: number;
}

/**
 * The adoptions and releases one event-loop turn of the main thread asked of one step thread, in
 * the order asked: one message, not one each (a storm of 1,000 STOPs posted 1,000 releases, each
 * a copy, a wake-up and about 15 µs of the main thread: pool/step-channels.ts postResident).
 */
export interface ResidentMessages {
  kind: 'residents';
  messages: Array<ResidentAdopt | ResidentRelease>;
}

/** Numbers per answer in ResidentAnswers' meta: token, how it ended, when due, its step number. */
export const RESIDENT_META = 4;

/**
 * What a step thread posts for its residents: per answer its token, how it ended (residents.ts
 * RESIDENT_END), when the step was due (or, for one handed back unrun, when it falls due) and the
 * residency's step number of it (pool/quiet-steps.ts), then the answers packed as a batch's
 * (pool/answer-codec.ts), null where no step ran.
 */
export interface ResidentAnswers {
  residents: [meta: Float64Array, answers: PackedBatch];
}

/** Everything the step pool runs over a step channel. */
export type ChannelJob = StepBatchTask | ProbeTask | SpoolRemovalTask;

/** What goes over a step channel for a job: a step batch packed (pool/task-codec.ts), any other job as itself. */
export type ChannelMessage = PackedStepBatch | ProbeTask | SpoolRemovalTask | ResidentMessages;

/**
 * What comes back for each job: its result, or what it threw outside any step's own error
 * handling. A step batch's result comes packed, its timing in it (pool/answer-codec.ts).
 */
export type ChannelAnswer = { ok: TaskResult } | PackedBatch | { thrown: TaskError } | ResidentAnswers;

/** What every pool thread gets once, when it starts. */
export interface PoolWorkerData {
  flagsSlab: SharedArrayBuffer;
  claimSlab: SharedArrayBuffer;
  /**
   * A batch's thread posts the outcomes it has once this many µs passed since the batch began or
   * since its last part (STEP_BATCH_ANSWER_US; 0: one answer when the whole batch is done).
   */
  batchAnswerUs: number;
  /** The step threads' timer tick for resident steps, ms (STEP_TIMER_TICK_MS): due times are rounded up to it. */
  stepTickMs: number;
  /**
   * How long a step thread gathers its residents' answers whose results it sent itself before it
   * posts them (STEP_RESIDENT_ANSWER_MS; 0: at the end of every tick).
   */
  residentAnswerMs?: number;
  /** The most resident answers a step thread posts in one message (STEP_RESIDENT_ANSWER_MAX; absent: no cap). */
  residentAnswerMax?: number;
  /** How a step thread groups its residents' waits (absent: every wait ends on the tick). */
  residentGrouping?: ResidentGrouping;
  /** The clients' sockets' slots, when step threads write results' frames into them (STEP_SENDS); null when off. */
  socketSlots?: SocketSlotBuffers | null;
  /** Where residents' quiet steps are published (pool/quiet-steps.ts; absent, or no state bytes: every step answered). */
  quietSlab?: QuietSlabInfo;
  /** When a step consumer is quick enough to be lent (STEP_LEND_CONSUMER_*; absent: the defaults). */
  lendConsumer?: LendLimits;
}

/** What one entry of a batch came to: its result, or what it threw (not a pipeline error: those are in the result). */
export type StepOutcome = { ok: ProduceStepResult | ConsumeStepResult } | { thrown: TaskError };

export interface StepBatchResult {
  /**
   * By entry; null for an entry the main thread took back before it began, and, in a part,
   * for every entry the part does not carry (pool/answer-codec.ts).
   */
  outcomes: Array<StepOutcome | null>;
  timing?: TaskTiming;
  /** Set on a part of the answer that is not its last: more of the batch's outcomes follow. */
  partial?: true;
}

export type Task = StepBatchTask | LoopTask | ProbeTask | SpoolRemovalTask | StepChannelTask;

export interface ChunkRecord {
  seq: number;
  /** Epoch ms (fractional) at which the chunk became visible. */
  producedAt: number;
  sizeBytes: number;
}

export interface ResultRecord {
  seq: number;
  /** The consumer's result as the JSON text the client receives (serialised in the thread). */
  json: string;
  /** Epoch ms (fractional) at which the consumer began on this chunk. */
  takenAt: number;
  /** Epoch ms (fractional) at which the consumer had its result. */
  doneAt: number;
}

/** When a task ran on its thread, in epoch ms (fractional); the worker stamps every task it returns. */
export interface TaskTiming {
  startedAt: number;
  finishedAt: number;
}

/** An error as it crosses threads. Its stack goes to the log and to inspect, never to a client. */
export interface TaskError {
  name: string;
  message: string;
  /** Where a pipeline's error was thrown. */
  stack?: string;
}

export interface ProduceStepResult {
  /** True when the stop flag was already set and the step did not run. */
  skipped: boolean;
  state: unknown;
  delayMs: number;
  done: boolean;
  chunks: ChunkRecord[];
  /** Calls of the pipeline's `producer.step` this task made (a burst makes many; one that threw counts). */
  calls: number;
  threadId: number;
  error?: TaskError;
  timing?: TaskTiming;
  /** What the lent consumer did with the chunks (only when the task had `consumeAfter`). */
  consumed?: ConsumeStepResult;
  /** Where the chunks log ends after this step's writes: the main thread publishes it. */
  chunkLog?: ChunkLogEnd;
}

export interface ConsumeStepResult {
  skipped: boolean;
  state: unknown;
  results: ResultRecord[];
  threadId: number;
  /** Set when the consumer threw on the chunk after the last result. */
  error?: TaskError;
  timing?: TaskTiming;
  /** Where the results log ends and how far consumption got: the main thread publishes them. */
  resultLog?: ResultLogEnd;
  readMark?: ReadMark;
  /**
   * The step thread wrote every result into the client's socket itself (STEP_SENDS), so nobody
   * waits for this answer to see them. Read on the thread only (residents-thread.ts): never packed.
   */
  sentAll?: boolean;
}

export interface LoopResult {
  /** Producer: seq of the last chunk written; consumer: seq of the last result emitted. */
  lastSeq: number;
  error?: TaskError;
  timing?: TaskTiming;
}

export type TaskResult = StepBatchResult | LoopResult | ProbeResult | SpoolRemovalResult;

/** A step channel's task ends when its port closes. */
export interface ChannelClosed {
  threadId: number;
  timing?: TaskTiming;
}

/** The speech decoders one loop thread holds (src/pipelines/speech/decoder-shelf.ts). */
export interface DecoderCount {
  threadId: number;
  /** Kept for the next session on this thread. */
  idle: number;
  /** Lent to a running session. */
  busy: number;
  /** Decoders this thread loaded since its previous report (a model load: what reuse saves). */
  loaded: number;
}

/**
 * Posted by a running loop through `parentPort`; routed by session id. `decoders` is posted by
 * a loop thread whenever its speech decoders change; the pool keeps it (WorkerPool.decoders()).
 */
export type WorkerEvent = SessionEvent | { type: 'decoders'; count: DecoderCount };

/** The events of WorkerEvent that belong to a session. */
export type SessionEvent = { type: 'chunk'; sessionId: string; chunk: ChunkRecord } | { type: 'result'; sessionId: string; result: ResultRecord };
