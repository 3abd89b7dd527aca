/**
 * How the step pool's threads are fed: each thread is held by one long Piscina task (a channel)
 * and takes its work over a MessagePort of its own, one job at a time.
 *
 * A Piscina task per batch cost the main thread its task bookkeeping, an AbortController, async
 * tracking and a wake through Piscina's shared counters on top of the message itself: 30–45 µs
 * of CPU a hand-off more than a bare port (docs/PERFORMANCE.md, "The step channel"). Here a
 * hand-off is one message each way.
 *
 * What a Piscina task gave is kept:
 * - Jobs wait in one queue and go to the first idle channel; up to `maxChannels` channels are
 *   opened as work needs them, and one idle for `idleTimeoutMs` closes while more than
 *   `minChannels` are open, giving its thread back to Piscina (which ends it in turn).
 * - Only `activeChannels` of them take work (POOL_ACTIVE_THREADS: on 2 cores one, so the main
 *   thread keeps a core; a second step thread sharing it only made every thread wait for a core).
 *   The others are spares for a channel whose thread is held (a step past STEP_BATCH_STALL_MS):
 *   a hung step never stalls the rest.
 * - Aborting a running job terminates its thread (the channel's task is aborted), and the job is
 *   rejected only once that thread has exited (`runHeld` waits for it, as for any aborted task).
 *   The channel leaves the open ones at once, so the queue goes on over a new channel on the
 *   thread Piscina starts in its place. An aborted job still queued is simply dropped.
 * - A thread that dies (process.exit, out of heap) rejects only the job it was running, with
 *   the words `runHeld` gives it; its channel is gone and the queue goes on over the others.
 * - Once closed, every job waiting or running, and any asked for later, rejects with
 *   PoolClosedError: work that cannot run fails rather than being sent again.
 *
 * Unlike an idle Piscina thread, an open channel keeps the process alive (Piscina holds its task's
 * port): the pool must be closed (WorkerPool.close), as the service does when it stops.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { RESIDENT_META, type ChannelAnswer, type ChannelJob, type ResidentAdopt, type ResidentAnswers, type ResidentMessages, type ResidentRelease, type StepBatchResult, type StepBatchTask, type StepChannelTask, type TaskResult } from './messages.js';
import { nowMs } from './flags.js';
import { unpackBatch } from './answer-codec.js';
import { TurnQueue } from './turn-queue.js';
import { Watchdog } from './watchdog.js';
import { packStepBatch } from './task-codec.js';

/** The pool was closed: the job did not run, or its answer will never come. */
export class PoolClosedError extends Error {
  constructor() {
    super('the pool is closed');
    this.name = 'PoolClosedError';
  }
}

export interface ChannelLimits {
  /** Channels kept open when idle. */
  minChannels: number;
  /** Most channels (threads) at once. */
  maxChannels: number;
  /** An idle channel above the minimum closes after this long, ms. */
  idleTimeoutMs: number;
  /**
   * Channels given work while none is held (POOL_ACTIVE_THREADS; default `maxChannels`). The others
   * are spares: a job or a resident goes to one only while a channel's thread is held.
   */
  activeChannels?: number;
  /**
   * A channel whose job is still unanswered this long after it was given, ms, counts as held
   * (STEP_BATCH_STALL_MS); judged every as long, as of when the answers were read (#judgeHeld).
   */
  heldAfterMs?: number;
}

/** What the channels need of the pool that owns the threads. */
export interface ChannelHost {
  /**
   * Runs a channel's task on a thread of its own. Aborting `signal` terminates that thread; the
   * returned promise then rejects once it exited, and otherwise rejects with how the thread died.
   */
  runHeld(task: StepChannelTask, signal: AbortSignal, transferList: MessagePort[]): Promise<unknown>;
  /** A channel's thread died with no job on it (e.g. a timer a pipeline left behind threw). */
  threadDied(err: unknown): void;
}

/** Run and wait times, in ms, summarised as GET /api/pool reports them. */
export interface TimingSummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A job on its way: its answer, and how to end it (terminating its thread if it runs). */
export interface ChannelRun {
  readonly result: Promise<TaskResult>;
  abort(reason: Error): void;
  /**
   * Takes the job back if no channel has taken it yet (it then rejects with JobWithdrawnError)
   * and says whether it did; a job already running is left to run.
   */
  withdraw(): boolean;
  /** When a channel (a thread) was given the job, epoch ms; 0 while it waits in the queue. */
  givenAt(): number;
}

/** The job was taken back before any thread began it (ChannelRun.withdraw). */
export class JobWithdrawnError extends Error {
  constructor() {
    super('the job was taken back before a thread began it');
    this.name = 'JobWithdrawnError';
  }
}

/**
 * The job's thread was ended for something else it ran (a resident's step past its time limit,
 * or forced by its stop: pool/residents.ts): the job did not fail, its work is to be done again.
 */
export class ThreadEndedError extends Error {
  constructor() {
    super('its thread was ended for another step it ran');
    this.name = 'ThreadEndedError';
  }
}

/** Told each part of a step batch's answer that is not its last (the last settles the job). */
export type PartHandler = (part: StepBatchResult) => void;

/** A channel as the resident steps (pool/residents.ts) see it: where residents live. */
export interface ResidentPlace {
  /** Residents its thread keeps. */
  residents: number;
  /** Its thread is held by a step past STEP_BATCH_STALL_MS: it gets no job and no resident until it answers again. */
  stuck: boolean;
  /** Asked whether it answers (pingStuck), with no answer since. */
  pinged: boolean;
}

/** What the resident steps hear of the channels they live on. */
export interface ResidentListener {
  answered(place: ResidentPlace, answers: ResidentAnswers): void;
  /**
   * The channel's thread is gone: it died (`endedByUs` false), was ended by us (for a job or a
   * resident of it), or the channels closed (PoolClosedError). `err` says how.
   */
  gone(place: ResidentPlace, err: unknown, endedByUs: boolean): void;
}

interface Job {
  readonly task: ChannelJob;
  readonly onPart: PartHandler | null;
  readonly resolve: (r: TaskResult) => void;
  readonly reject: (err: unknown) => void;
  readonly submittedAt: number;
  channel: Channel | null;
  settled: boolean;
  /** When a channel was given it, epoch ms (0: still queued). */
  givenAt: number;
  /** Its thread counts as held: it was unanswered STEP_BATCH_STALL_MS after it was given (#judgeHeld). */
  held: boolean;
  /** Set once aborted: the reason it rejects with. */
  aborted: Error | null;
}

interface Channel extends ResidentPlace {
  readonly port: MessagePort;
  readonly controller: AbortController;
  job: Job | null;
  /**
   * The session whose description its thread holds, by flags slot, as the thread keeps them
   * (worker.ts sessionOf): a step of that session goes without it (see #postBatch).
   */
  readonly sessions: Array<string | undefined>;
  /** Aborted by us: its answers no longer count, its job rejects when the thread has exited. */
  aborting: boolean;
  idleTimer: NodeJS.Timeout | null;
  /** Adoptions and releases asked for this turn, posted together at its end or before its next job (#postOutbox). */
  outbox: Array<ResidentAdopt | ResidentRelease>;
}

export class StepChannels {
  readonly #host: ChannelHost;
  readonly #limits: ChannelLimits;
  /** Channels that take work while none is held (ChannelLimits.activeChannels, within the maximum). */
  readonly activeLimit: number;
  /** ChannelLimits.heldAfterMs (Infinity: a job never makes its channel held). */
  readonly #heldAfterMs: number;
  /** Open channels: those a job may go to. One aborted leaves at once (its thread is being ended). */
  readonly #channels = new Set<Channel>();
  #queue: Job[] = [];
  #closed = false;
  #completed = 0;
  #runMsTotal = 0;
  readonly #startedAt = nowMs();
  /** In µs (a histogram records integers). */
  readonly #wait: RecordableHistogram = createHistogram();
  readonly #run: RecordableHistogram = createHistogram();
  #residents: ResidentListener | null = null;
  /** Runs while a job is unanswered and not yet held (#judgeHeld); null when a job never holds its thread. */
  readonly #heldWatch: Watchdog | null;
  /** Channels with an outbox to post at the end of this turn. */
  readonly #outboxes = new TurnQueue<Channel>((channels) => {
    for (const c of channels) this.#postOutbox(c);
  });

  constructor(host: ChannelHost, limits: ChannelLimits) {
    this.#host = host;
    this.#limits = limits;
    this.activeLimit = Math.min(limits.activeChannels ?? limits.maxChannels, limits.maxChannels);
    this.#heldAfterMs = limits.heldAfterMs ?? Infinity;
    this.#heldWatch = Number.isFinite(this.#heldAfterMs) ? new Watchdog(this.#heldAfterMs, (asOf) => this.#judgeHeld(asOf)) : null;
  }

  /** Where resident steps hear of their channels (one listener: pool/residents.ts). */
  listenResidents(listener: ResidentListener): void {
    this.#residents = listener;
  }

  /**
   * A channel for one more resident: the open one holding the most residents under `perThread`
   * (residents fill one thread before the next: spread, every tick woke both threads and the main
   * thread twice), a new one while fewer than the maximum are open, or null.
   */
  placeResident(perThread: number): ResidentPlace | null {
    let best: Channel | null = null;
    const active = this.#activeChannels();
    for (const c of active) {
      if (c.residents >= perThread) continue;
      if (!best || c.residents > best.residents) best = c;
    }
    if (best || this.#closed) return best;
    return this.#mayOpen(active.length) ? this.#open() : null;
  }

  /**
   * The channels that take work: the first POOL_ACTIVE_THREADS (in the order they opened) whose
   * thread is not held. A thread is held while a resident's step or a job runs past
   * STEP_BATCH_STALL_MS there: then a spare takes its place, so a hung step never stalls the rest.
   */
  #activeChannels(): Channel[] {
    const active: Channel[] = [];
    for (const c of this.#channels) {
      if (active.length >= this.activeLimit) break;
      if (!this.#held(c)) active.push(c);
    }
    return active;
  }

  #held(c: Channel): boolean {
    return c.aborting || c.stuck || (c.job?.held ?? false);
  }

  /**
   * Marks held each job still unanswered STEP_BATCH_STALL_MS after it was given, judged as of
   * `asOf`, when every answer posted before it was read (pool/watchdog.ts), and lets spares take
   * the queue. Judged by the clock alone, a job that answered while the main thread was busy past
   * the stall looked held until its answer was read, and the work asked for in between went to a
   * spare, which took it back unbegun a stall later (a race found by the step-batcher test "a
   * main thread busy past the stall").
   */
  #judgeHeld(asOf: number): void {
    let waiting = false;
    for (const c of this.#channels) {
      const job = c.job;
      if (!job || job.held) continue;
      if (asOf - job.givenAt >= this.#heldAfterMs) job.held = true;
      else waiting = true;
    }
    if (!waiting) this.#heldWatch!.disarm();
    this.#pump();
  }

  /** Whether one more channel may open, `active` of them taking work. */
  #mayOpen(active: number): boolean {
    return active < this.activeLimit && this.#channels.size < this.#limits.maxChannels;
  }

  /** Whether a channel's thread is held (ResidentPlace.stuck). */
  anyStuck(): boolean {
    for (const c of this.#channels) if (c.stuck && !c.aborting) return true;
    return false;
  }

  /**
   * Asks each held thread whether it answers (an empty resident answer to token 0, which frees
   * it: #answered); one question at a time, however long it stays held.
   */
  pingStuck(): void {
    for (const c of this.#channels) {
      if (!c.stuck || c.aborting || c.pinged) continue;
      c.pinged = true;
      this.postResident(c, { kind: 'release', token: 0 });
    }
  }

  /**
   * Posts an adoption or a release to a resident's channel: at the end of this event-loop turn,
   * with the others asked of that channel in it (ResidentMessages), or before its next job, so its
   * thread reads everything in the order it was asked.
   */
  postResident(place: ResidentPlace, message: ResidentAdopt | ResidentRelease): void {
    const channel = place as Channel;
    if (channel.aborting || !this.#channels.has(channel)) return;
    if (channel.idleTimer) {
      clearTimeout(channel.idleTimer);
      channel.idleTimer = null;
    }
    if (channel.outbox.length === 0) this.#outboxes.push(channel);
    channel.outbox.push(message);
  }

  /** Posts what the channel's outbox holds, unless its thread is being ended (its residents then hear `gone`). */
  #postOutbox(channel: Channel): void {
    const messages = channel.outbox;
    if (messages.length === 0) return;
    channel.outbox = [];
    if (channel.aborting || !this.#channels.has(channel)) return;
    channel.port.postMessage({ kind: 'residents', messages } satisfies ResidentMessages);
  }

  /**
   * Ends a resident channel's thread (a resident step past STEP_TIMEOUT_MS, or forced by its
   * stop). Its residents hear `gone`; a job it holds fails as for a thread that died under it.
   */
  endThread(place: ResidentPlace, reason: Error): void {
    const channel = place as Channel;
    if (channel.aborting || !this.#channels.has(channel)) return;
    // A job it holds did nothing wrong: it fails so that it is done again (step-batcher.ts).
    if (channel.job && !channel.job.aborted) channel.job.aborted = new ThreadEndedError();
    channel.aborting = true;
    this.#channels.delete(channel);
    if (channel.idleTimer) clearTimeout(channel.idleTimer);
    channel.controller.abort(reason);
    this.#pump();
  }

  /**
   * Runs a job on the first idle channel. Its result rejects when it is aborted (once the thread
   * it ran on has exited), when its thread died under it, or when the channels are closed. A step
   * batch's parts that come before its last go to `onPart` (none come once it is aborted).
   */
  run(task: ChannelJob, onPart: PartHandler | null = null): ChannelRun {
    let job!: Job;
    const result = new Promise<TaskResult>((resolve, reject) => {
      job = { task, onPart, resolve, reject, submittedAt: nowMs(), channel: null, settled: false, givenAt: 0, held: false, aborted: null };
    });
    if (this.#closed) this.#settle(job, null, new PoolClosedError());
    else {
      this.#queue.push(job);
      this.#pump();
    }
    return { result, abort: (reason) => this.#abort(job, reason), withdraw: () => this.#withdraw(job), givenAt: () => job.givenAt };
  }

  /** Open channels whose thread is held now (a stuck resident, or a job past the held time): spares take their place. */
  get held(): number {
    let n = 0;
    for (const c of this.#channels) if (this.#held(c)) n++;
    return n;
  }

  /** Channels running a job. */
  get busy(): number {
    let n = 0;
    for (const c of this.#channels) if (c.job) n++;
    return n;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get completed(): number {
    return this.#completed;
  }

  /** Share of the channels' capacity (maxChannels threads) spent running jobs since start, 0..1. */
  get utilization(): number {
    const elapsed = nowMs() - this.#startedAt;
    return elapsed > 0 ? Math.min(1, this.#runMsTotal / (elapsed * this.#limits.maxChannels)) : 0;
  }

  histogram(): { waitTime: TimingSummary; runTime: TimingSummary } {
    return { waitTime: summary(this.#wait), runTime: summary(this.#run) };
  }

  /** Rejects what waits and closes every channel (the pool terminates the threads). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#heldWatch?.close();
    for (const job of this.#queue) this.#settle(job, null, new PoolClosedError());
    this.#queue = [];
    for (const channel of this.#channels) {
      if (channel.idleTimer) clearTimeout(channel.idleTimer);
      if (channel.job) this.#settle(channel.job, null, new PoolClosedError());
      if (channel.residents > 0) this.#residents?.gone(channel, new PoolClosedError(), true);
      channel.port.close();
    }
    this.#channels.clear();
    // An aborted channel's job still rejects with its abort reason once its thread has exited (#gone).
  }

  /** Gives queued jobs to idle channels, opening channels up to the maximum. */
  #pump(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const active = this.#activeChannels();
      const channel = active.find((c) => !c.job) ?? (this.#mayOpen(active.length) ? this.#open() : null);
      // Jobs wait while every active channel is busy: once one of theirs is judged held, a spare
      // may take the queue (#judgeHeld).
      if (!channel) return;
      const job = this.#queue.shift()!;
      this.#give(channel, job);
    }
  }

  #give(channel: Channel, job: Job): void {
    if (channel.idleTimer) {
      clearTimeout(channel.idleTimer);
      channel.idleTimer = null;
    }
    channel.job = job;
    job.channel = channel;
    job.givenAt = nowMs();
    this.#heldWatch?.arm();
    this.#postOutbox(channel);
    if (job.task.kind === 'step-batch') this.#postBatch(channel, job.task);
    else channel.port.postMessage(job.task);
  }

  #open(): Channel {
    const { port1, port2 } = new MessageChannel();
    const channel: Channel = { port: port1, controller: new AbortController(), job: null, sessions: [], aborting: false, idleTimer: null, outbox: [], residents: 0, stuck: false, pinged: false };
    this.#channels.add(channel);
    port1.on('message', (answer: ChannelAnswer) => this.#answered(channel, answer));
    this.#host.runHeld({ kind: 'step-channel', port: port2 }, channel.controller.signal, [port2]).then(
      () => this.#gone(channel, new Error('its worker thread left the step channel'), true),
      (err: unknown) => this.#gone(channel, err),
    );
    return channel;
  }

  /**
   * Posts a batch as this channel's thread needs it, packed (pool/task-codec.ts): a step of a
   * session whose description the thread already holds goes without it (a few hundred bytes to
   * copy and a buffer to allocate and free, on both threads, for every step). The thread keeps
   * every description a batch brings, before any of its steps runs, so what is marked here is
   * what it has.
   */
  #postBatch(channel: Channel, task: StepBatchTask): void {
    let described = false;
    const packed = packStepBatch(task, (e) => {
      if (channel.sessions[e.flagsSlot] === e.sessionId) return false;
      described = true;
      return true;
    });
    channel.port.postMessage(packed, [packed[0].buffer as ArrayBuffer]);
    // Marked once posted: a batch that could not be posted gave the thread nothing to keep.
    if (described) for (const e of task.entries) if (e.session !== undefined) channel.sessions[e.flagsSlot] = e.sessionId;
  }

  #answered(channel: Channel, answer: ChannelAnswer): void {
    if (channel.aborting) return;
    // Any answer shows the thread is no longer held.
    channel.pinged = false;
    if (channel.stuck) {
      channel.stuck = false;
      this.#pump();
    }
    if ('residents' in answer) {
      this.#completed += answer.residents[0].length / RESIDENT_META;
      this.#residents?.answered(channel, answer);
      return;
    }
    const job = channel.job;
    if (!job) return;
    if (Array.isArray(answer)) {
      const batch = unpackBatch(answer);
      if (batch.partial) {
        job.onPart?.(batch);
        return;
      }
      answer = { ok: batch };
    }
    channel.job = null;
    job.channel = null;
    if ('ok' in answer) {
      const t = answer.ok.timing;
      if (t) {
        this.#record(this.#wait, t.startedAt - job.submittedAt);
        this.#record(this.#run, t.finishedAt - t.startedAt);
        this.#runMsTotal += Math.max(0, t.finishedAt - t.startedAt);
      }
      this.#completed++;
      this.#settle(job, answer.ok, null);
    } else {
      const err = new Error(answer.thrown.message);
      err.name = answer.thrown.name;
      this.#settle(job, null, err);
    }
    this.#idle(channel);
    this.#pump();
  }

  /** A channel with nothing to do: above the minimum, it closes if it stays so for the idle timeout. */
  #idle(channel: Channel): void {
    if (channel.job || channel.residents > 0 || channel.aborting || this.#closed) return;
    if (this.#channels.size <= this.#limits.minChannels) return;
    channel.idleTimer = setTimeout(() => {
      channel.idleTimer = null;
      if (channel.job || channel.residents > 0 || this.#channels.size <= this.#limits.minChannels) return;
      this.#channels.delete(channel);
      channel.port.close();
    }, this.#limits.idleTimeoutMs);
    channel.idleTimer.unref();
  }

  /** A channel's task ended: closed by us, aborted by us, or its thread died. Its job, if any, fails with it. */
  #gone(channel: Channel, err: unknown, closedByUs = false): void {
    this.#channels.delete(channel);
    if (channel.idleTimer) clearTimeout(channel.idleTimer);
    channel.port.close();
    const job = channel.job;
    channel.job = null;
    if (job) {
      job.channel = null;
      this.#settle(job, null, job.aborted ?? err);
    } else if (!channel.aborting && !this.#closed && !closedByUs && channel.residents === 0) {
      this.#host.threadDied(err);
    }
    if (channel.residents > 0) this.#residents?.gone(channel, err, channel.aborting);
    this.#pump();
  }

  #withdraw(job: Job): boolean {
    if (job.settled || job.channel) return false;
    const i = this.#queue.indexOf(job);
    if (i < 0) return false;
    this.#queue.splice(i, 1);
    this.#settle(job, null, new JobWithdrawnError());
    return true;
  }

  #abort(job: Job, reason: Error): void {
    if (job.settled || job.aborted) return;
    job.aborted = reason;
    const channel = job.channel;
    if (!channel) {
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#settle(job, null, reason);
      return;
    }
    // The only way to end a step that ignores its stop flag: its thread goes, and with it the
    // channel. Piscina starts another thread at once: the queue goes on over a channel there.
    channel.aborting = true;
    this.#channels.delete(channel);
    if (channel.idleTimer) clearTimeout(channel.idleTimer);
    channel.controller.abort(reason);
    this.#pump();
  }

  #settle(job: Job, result: TaskResult | null, err: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (result) job.resolve(result);
    else job.reject(err);
  }

  #record(h: RecordableHistogram, ms: number): void {
    h.record(Math.max(1, Math.round(ms * 1000)));
  }
}

function summary(h: RecordableHistogram): TimingSummary {
  if (h.count === 0) return { mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: 0 };
  return { mean: h.mean / 1000, p50: h.percentile(50) / 1000, p90: h.percentile(90) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000 };
}
