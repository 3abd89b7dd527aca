import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { StepChannels, type PartHandler, type TimingSummary } from './step-channels.js';
import type { BatchObserver, BatchRun } from './step-batcher.js';
import type { QuietReader } from './quiet-steps.js';
import { ResidentSteps, type ResidentLimits } from './residents.js';
import type {
  ChannelClosed,
  DecoderCount,
  LoopResult,
  LoopTask,
  PoolWorkerData,
  SessionEvent,
  SpoolRemovalResult,
  SpoolRemovalTask,
  StepBatchResult,
  StepBatchTask,
  StepChannelTask,
  WorkerEvent,
} from './messages.js';

export interface PoolOptions {
  /** Step pool: threads kept when idle. */
  minThreads: number;
  /** Step pool: most threads at once. */
  maxThreads: number;
  /**
   * Step pool: threads given work while none is held (POOL_ACTIVE_THREADS; default `maxThreads`);
   * the rest are spares for a thread held past `heldAfterMs`.
   */
  activeThreads?: number;
  /** A step thread running one job this long, ms, is held (STEP_BATCH_STALL_MS). */
  heldAfterMs?: number;
  /** Loop pool: most loop-shaped sides at once (one thread each). */
  loopMaxThreads: number;
  /** Lifetime of an idle thread above the minimum, ms. */
  idleTimeoutMs: number;
  /** Lifetime of an idle loop-pool thread, ms (config.ts: loopIdleTimeoutMs says why it differs). */
  loopIdleTimeoutMs: number;
  /** V8 old-generation cap per thread, MiB (0 = Node's default). */
  maxHeapMb: number;
  /**
   * STOP_EXIT_WAIT_MS: how long an aborted task's answer waits for its terminated thread to exit,
   * ms (a thread blocked in a native call exits only when the call returns).
   */
  exitWaitMs: number;
}

/** Where a task's thread went: the step pool, or a thread held by a loop. */
export type PoolName = 'step' | 'loop';

/** A removal on its way: its answer, and how to take it back while no thread has begun it. */
export interface SpoolRemovalRun {
  readonly result: Promise<SpoolRemovalResult>;
  withdraw(): boolean;
}

export interface PoolStats {
  threads: number;
  /** Threads of the step pool and of the loop pool. */
  stepThreads: number;
  loopPoolThreads: number;
  busy: number;
  idle: number;
  loopThreads: number;
  queueDepth: number;
  utilization: number;
  completed: number;
  minThreads: number;
  maxThreads: number;
  /** Step threads that take work while none is held (POOL_ACTIVE_THREADS, resolved). */
  activeThreads: number;
  /** Step threads held now (a stuck resident, a job past STEP_BATCH_STALL_MS): spares take their place. */
  heldThreads: number;
  loopMaxThreads: number;
}

/**
 * Piscina rejects a task whose thread died with Node's own words ("worker exited with code: 3",
 * "Worker terminated due to reaching memory limit: JS heap out of memory"); this says the same
 * in terms a pipeline author can act on. The message reaches the client, inspect and the log.
 */
export function threadDeathError(err: unknown, maxHeapMb: number): Error {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    const cap = maxHeapMb > 0 ? `the ${maxHeapMb} MiB heap cap of WORKER_MAX_HEAP_MB` : "Node's default heap limit";
    return new Error(`its worker thread ran out of memory (reached ${cap})`, { cause: err });
  }
  const exited = /worker exited with code: (-?\d+)/.exec(message);
  if (exited) {
    return new Error(`its worker thread exited with code ${exited[1]} (process.exit() in pipeline code?)`, { cause: err });
  }
  return new Error(`its worker thread crashed: ${message}`, { cause: err });
}

/** The worker export a loop consumer's task runs (worker.ts: consumeLoopTask). */
const CONSUME_LOOP_TASK = 'consumeLoopTask';

/** Dropped loop threads remembered (WorkerPool.#goneThreads): reports arrive within moments of a drop. */
const GONE_THREADS_KEPT = 1024;

/** The file Piscina loads in each pool thread: CommonJS, so its `require()` never loads an ES module (see worker-entry.cts). */
export const POOL_TASK_FILE = fileURLToPath(new URL('./worker-entry.cjs', import.meta.url));

/**
 * The threads every session shares. Steps run on a small pool sized to the CPU, each of its
 * threads held by a channel that takes batches over a port of its own (step-channels.ts); each
 * loop holds a thread of a second pool for its whole session, so loops can never starve steps.
 * Aborting a task's signal while it runs terminates its thread; Piscina replaces it. Piscina
 * rejects the aborted task the moment it asks the thread to stop, but the thread runs on until V8
 * interrupts it, or, blocked in a native call (a spawnSync, a read that never returns), until that
 * call returns. So an aborted task is answered only once the thread it ran on has exited (at most
 * STOP_EXIT_WAIT_MS): the session's `stopped` then means nothing of it runs, a batch's claim slot
 * is reused only when no thread can still claim from it, and a session's files are closed only
 * when no thread of it can still write through them (`whenExited`).
 */
export class WorkerPool {
  readonly #steps: Piscina<StepChannelTask, ChannelClosed>;
  /** How the step pool's threads are fed (each held by a channel: pool/step-channels.ts). */
  readonly #channels: StepChannels;
  /** The probe under way, shared by concurrent readiness checks. */
  #probe: Promise<boolean> | null = null;
  readonly #loops: Piscina<LoopTask, LoopResult>;
  readonly #options: PoolOptions;
  #runningLoops = 0;
  /** Speech decoders each loop thread holds, by thread id, as the thread last reported them. */
  readonly #decoders = new Map<number, DecoderCount>();
  /**
   * Loop threads that exited, most recent last (at most GONE_THREADS_KEPT): a report a thread
   * posted just before it ended can arrive after it is gone, and must not bring its decoders back
   * to the count.
   */
  readonly #goneThreads = new Set<number>();
  /** Decoders loaded by loop threads since start. */
  #decoderLoads = 0;
  /** Decoders a loop thread still held when it went (terminated under a session, or died): never freed. */
  #decodersLost = 0;
  #closed = false;
  #residents: ResidentSteps | null = null;
  /** Each pool thread's exit, by thread id, while it lives (both pools). */
  readonly #exits = new Map<number, Promise<void>>();
  /** Set by an aborted task's abort: where Piscina's termination of its thread is noted (see #abortable). */
  #terminatedNow: number[] | null = null;

  /**
   * @param onEvent receives what running loops post (chunks, results).
   * @param onThreadError told when a thread dies outside any task's own failure (e.g. a timer a
   * pipeline left behind threw after its step returned); the pool replaces the thread.
   */
  constructor(
    options: PoolOptions,
    workerData: PoolWorkerData,
    onEvent: (event: SessionEvent) => void,
    onThreadError: (err: unknown) => void = () => {},
  ) {
    this.#options = options;
    const resourceLimits = options.maxHeapMb > 0 ? { maxOldGenerationSizeMb: options.maxHeapMb } : undefined;
    // fds belong to the process, not the thread: a terminated thread's open files must be closed
    // for it (Piscina's default, stated because a forced stop depends on it).
    const trackUnmanagedFds = true;
    this.#steps = new Piscina({
      filename: POOL_TASK_FILE,
      name: 'default',
      minThreads: options.minThreads,
      maxThreads: options.maxThreads,
      // A step thread is idle only once its channel closed, which it does after idleTimeoutMs
      // without work (step-channels.ts): the thread then goes at once.
      idleTimeout: 0,
      resourceLimits,
      trackUnmanagedFds,
      recordTiming: true,
      workerData,
    });
    this.#loops = new Piscina({
      filename: POOL_TASK_FILE,
      minThreads: 0,
      maxThreads: Math.max(1, options.loopMaxThreads),
      idleTimeout: options.loopIdleTimeoutMs,
      concurrentTasksPerWorker: 1,
      // An idle loop thread must keep running its event loop: the speech decoders it keeps are
      // freed by its own timer (decoder-shelf.ts). Piscina's default parks an idle thread in
      // Atomics.wait, where no timer fires, so the thread was ended with its decoders unfreed.
      // A loop task holds its thread for a session: a message-port hand-off costs it nothing.
      atomics: 'disabled',
      loadBalancer: (task, workers) => this.#pickLoopThread(task.name === CONSUME_LOOP_TASK, workers),
      resourceLimits,
      trackUnmanagedFds,
      recordTiming: true,
      workerData,
    });
    this.#channels = new StepChannels(
      {
        runHeld: (task, signal, transferList) => this.#abortable(signal, () => this.#steps.run(task, { signal, transferList })),
        threadDied: onThreadError,
      },
      {
        minChannels: options.minThreads,
        maxChannels: options.maxThreads,
        idleTimeoutMs: options.idleTimeoutMs,
        activeChannels: options.activeThreads,
        heldAfterMs: options.heldAfterMs,
      },
    );
    this.#watchExits(this.#steps);
    // A loop thread's decoders go with it, however it ended (an ended idle thread had freed them
    // first; a terminated or dead busy one loses them): its last report no longer counts.
    this.#watchExits(this.#loops, (id) => this.#decodersGone(id));
    this.#steps.on('message', onEvent);
    // Only a loop thread holds decoders (a loop consumer borrows one for its session).
    this.#loops.on('message', (event: WorkerEvent) => {
      if (event.type === 'decoders') {
        this.#decoderLoads += event.count.loaded;
        if (!this.#goneThreads.has(event.count.threadId)) this.#decoders.set(event.count.threadId, event.count);
      } else onEvent(event);
    });
    // A thread that dies (process.exit, out of heap) fails only its task; never crash the service.
    this.#steps.on('error', onThreadError);
    this.#loops.on('error', onThreadError);
  }

  /**
   * Runs a batch of bounded steps (pool/step-batcher.ts decides what goes in one). Aborting it
   * while it runs terminates its thread. Its result rejects when the thread dies under it, with a
   * message that says how (see threadDeathError). The answer's parts before its last go to `onPart`.
   */
  runBatch(task: StepBatchTask, onPart: PartHandler): BatchRun {
    return this.#channels.run(task, onPart) as BatchRun;
  }

  /** Resident steps on this pool's step threads (pool/residents.ts): made once, when STEP_RESIDENTS is on. */
  residents(flagsSlab: SharedArrayBuffer, limits: ResidentLimits, observer: BatchObserver, quiet: QuietReader | null = null): ResidentSteps {
    this.#residents = new ResidentSteps(this.#channels, flagsSlab, limits, observer, quiet);
    return this.#residents;
  }

  /** Sessions resident on the step threads now, and the residencies' totals (zeros without STEP_RESIDENTS). */
  residentStats(): { residents: number; loadPerS: number; adopted: number; takenBack: number; rolledBack: number; quietSteps: number } {
    const r = this.#residents;
    return r ? { residents: r.count, loadPerS: r.loadPerS, ...r.totals } : { residents: 0, loadPerS: 0, adopted: 0, takenBack: 0, rolledBack: 0, quietSteps: 0 };
  }

  /**
   * Removes ended sessions' spool folders on a step thread (sessions/spool-remover.ts). Rejects
   * when the pool is closed, the thread died under it, or it was withdrawn before a thread began it.
   */
  removeSpools(task: SpoolRemovalTask): SpoolRemovalRun {
    const run = this.#channels.run(task);
    return { result: run.result as Promise<SpoolRemovalResult>, withdraw: () => run.withdraw() };
  }

  /** Step threads that take work while none is held: the batcher spreads a turn's steps over this many tasks. */
  get stepThreads(): number {
    return this.#channels.activeLimit;
  }

  /**
   * Whether the step pool runs a job (one that runs no user code) within `timeoutMs`: false when
   * its threads cannot start or every one is held by long steps with a queue in front. The probe
   * is never aborted (that would terminate a thread); a slow one just answers false.
   */
  canRunWork(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#probe ??= this.#channels.run({ kind: 'probe' }).result.then(
      () => true,
      () => false,
    ).finally(() => {
      this.#probe = null;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, false);
    });
    return Promise.race([this.#probe, late]).finally(() => clearTimeout(timer));
  }

  /** Runs a loop on a thread of its own for as long as the loop runs. */
  async runLoop(task: LoopTask, signal: AbortSignal): Promise<LoopResult> {
    this.#runningLoops++;
    try {
      return await this.#abortable(signal, () => this.#loops.run(task, { signal, name: task.kind === 'consume-loop' ? CONSUME_LOOP_TASK : 'default' }));
    } finally {
      this.#runningLoops--;
    }
  }

  /** Resolves once each of these pool threads has exited (at once for one already gone, or 0). */
  whenExited(threadIds: readonly number[]): Promise<void> {
    return Promise.all(threadIds.map((id) => this.#exits.get(id))).then(() => {});
  }

  /** Whether any of these pool threads still runs. */
  running(threadIds: readonly number[]): boolean {
    return threadIds.some((id) => this.#exits.has(id));
  }

  /**
   * Runs a task that `signal` may abort. Its rejection says how its thread died, or, when it was
   * aborted, comes once the thread Piscina terminated for it has exited (at most exitWaitMs).
   * Abort listeners run in the order they were added: the one below, added before `run` adds
   * Piscina's, opens a list; Piscina's then terminates the task's thread (one, or none for a task
   * still queued), which 'workerDestroy' notes in the list and closes it.
   */
  async #abortable<T>(signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    const terminated: number[] = [];
    const noteTermination = () => {
      this.#terminatedNow = terminated;
    };
    signal.addEventListener('abort', noteTermination, { once: true });
    try {
      return await run();
    } catch (err) {
      if (!signal.aborted) throw threadDeathError(err, this.#options.maxHeapMb);
      if (this.#terminatedNow === terminated) this.#terminatedNow = null; // queued: no thread was terminated
      await this.#exitedWithin(terminated, this.#options.exitWaitMs);
      throw err;
    } finally {
      signal.removeEventListener('abort', noteTermination);
    }
  }

  async #exitedWithin(threadIds: readonly number[], limitMs: number): Promise<void> {
    if (!this.running(threadIds)) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limitMs);
    });
    await Promise.race([this.whenExited(threadIds), late]);
    clearTimeout(timer);
  }

  /** A loop thread exited: the decoders it last reported are gone with it (lost if it still held any). */
  #decodersGone(threadId: number): void {
    const held = this.#decoders.get(threadId);
    if (held) this.#decodersLost += held.idle + held.busy;
    this.#decoders.delete(threadId);
    this.#goneThreads.add(threadId);
    if (this.#goneThreads.size > GONE_THREADS_KEPT) this.#goneThreads.delete(this.#goneThreads.values().next().value!);
  }

  /**
   * Keeps each thread's exit and tells `exited` (a Worker's threadId reads -1 once it exited, and
   * so does Piscina's id of a thread that died by itself, so it is taken when the thread is
   * created), and notes a thread Piscina terminates while an abort runs (#abortable).
   */
  #watchExits(pool: Piscina, exited: (threadId: number) => void = () => {}): void {
    pool.on('workerCreate', (info: { id: number }) => {
      const worker = pool.threads.find((w) => w.threadId === info.id);
      if (!worker) return;
      const id = info.id;
      this.#exits.set(
        id,
        new Promise<void>((resolve) =>
          worker.once('exit', () => {
            this.#exits.delete(id);
            exited(id);
            resolve();
          }),
        ),
      );
    });
    // Emitted from within the abort (Piscina's listener), before the aborted task's rejection is handled.
    pool.on('workerDestroy', (info: { id: number }) => {
      this.#terminatedNow?.push(info.id);
      this.#terminatedNow = null;
    });
  }

  stats(): PoolStats {
    // A step thread is held by its channel whether or not it runs anything: it is busy while its
    // channel runs a job.
    const stepThreads = this.#steps.threads.length;
    const loopThreads = this.#loops.threads.length;
    const threads = stepThreads + loopThreads;
    const stepBusy = Math.min(stepThreads, this.#channels.busy);
    const idle = stepThreads - stepBusy + this.#loops.idleThreads;
    return {
      threads,
      stepThreads,
      loopPoolThreads: loopThreads,
      busy: Math.max(0, threads - idle),
      idle,
      loopThreads: this.#runningLoops,
      queueDepth: this.#channels.queued,
      utilization: this.#channels.utilization,
      // A resident's quiet step is a step done as much as an answered one (pool/quiet-steps.ts).
      completed: this.#channels.completed + this.#loops.completed + (this.#residents?.totals.quietSteps ?? 0),
      minThreads: this.#options.minThreads,
      maxThreads: this.#options.maxThreads,
      activeThreads: this.#channels.activeLimit,
      heldThreads: this.#channels.held,
      loopMaxThreads: this.#options.loopMaxThreads,
    };
  }

  /**
   * Which idle loop thread takes a loop (Piscina's loadBalancer; null: none is idle, Piscina
   * starts a thread or queues). A consumer goes where a decoder is idle and a producer where
   * none is, so the next speech session finds its decoder instead of loading one (a session's
   * producer, started first, would otherwise often take that thread). Otherwise as Piscina's
   * own balancer: the first idle thread.
   */
  #pickLoopThread<W extends { id: number; currentUsage: number }>(consumer: boolean, workers: Iterable<W>): W | null {
    let first: W | null = null;
    for (const worker of workers) {
      if (worker.currentUsage !== 0) continue;
      first ??= worker;
      const holdsDecoder = (this.#decoders.get(worker.id)?.idle ?? 0) > 0;
      if (holdsDecoder === consumer) return worker;
    }
    return first;
  }

  /**
   * Speech decoders alive in loop threads: lent to a session (busy) or kept for the next (idle);
   * `loads`: how many were loaded since start (a session that found none idle loads one);
   * `lost`: how many went with a thread that ended holding them (their memory is not freed).
   */
  decoders(): { idle: number; busy: number; loads: number; lost: number } {
    let idle = 0;
    let busy = 0;
    for (const count of this.#decoders.values()) {
      idle += count.idle;
      busy += count.busy;
    }
    return { idle, busy, loads: this.#decoderLoads, lost: this.#decodersLost };
  }

  /** Run and wait time summaries of a pool's tasks (the step pool's: its channels' jobs), in ms. */
  histogram(pool: PoolName = 'step'): { waitTime: TimingSummary; runTime: TimingSummary } {
    return pool === 'step' ? this.#channels.histogram() : this.#loops.histogram;
  }

  /** Terminates every thread. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#channels.close();
    await Promise.allSettled([this.#steps.destroy(), this.#loops.destroy()]);
  }
}
