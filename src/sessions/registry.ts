import { randomUUID } from 'node:crypto';
import { tokenMatches } from '../auth/token.js';
import type { Logger } from 'pino';
import { refusals, tandemError } from '../errors.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { SessionEvent } from '../pool/messages.js';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { LogPolicy } from '../spool/appender.js';
import type { StepBatcher } from '../pool/step-batcher.js';
import type { ResidentSteps } from '../pool/residents.js';
import type { FlagsSlab } from '../pool/flags.js';
import type { HeldFilesBudget } from '../spool/held-files.js';
import type { SpoolRemover } from './spool-remover.js';
import type { TimerWheel } from './timer-wheel.js';
import { Session, type EndReason, type FlowLimits, type SessionObserver, type SessionSink, type SessionSummary } from './session.js';
import { spoolDir } from './spool.js';
import { LOCAL_LEDGER, type SessionLedger } from './ledger.js';

export interface RegistryOptions {
  pool: WorkerPool;
  steps: StepBatcher;
  /** Keeps step producers on step threads (STEP_RESIDENTS); null when off. */
  residents: ResidentSteps | null;
  timers: TimerWheel;
  /** Where each session's shared flags live (a slot each, given back when it ended). */
  flags: FlagsSlab;
  /** Descriptors sessions may hold open on their logs, all together. */
  heldFiles: HeldFilesBudget;
  /** Removes ended sessions' spool folders. */
  spools: SpoolRemover;
  catalog: PipelineCatalog;
  logger: Logger;
  observer: SessionObserver;
  dataDir: string;
  maxSessions: number;
  loopMaxThreads: number;
  consumerBatchMax: number;
  stopGraceMs: number;
  log: LogPolicy;
  burst: { maxChunks: number; maxMs: number; rateSlackMs: number };
  /** Ended sessions kept for inspection (SESSION_RETAIN_COUNT; 0 = none). */
  retainEndedCount: number;
  /** How long an ended session is kept for inspection, in ms (SESSION_RETAIN_SECONDS). */
  retainEndedMs: number;
  flow: FlowLimits;
  /** Whether START may keep its spool (KEPT_SPOOLS_ALLOWED). */
  keepAllowed: boolean;
  /** Told when a session that keeps its spool has ended (its spool is final). */
  keptSpoolEnded?(id: string): void;
  /** Admission and records beyond this instance (a cluster); default: none. */
  ledger?: SessionLedger;
}

export interface StartRequest {
  pipeline: string | undefined;
  url: string;
  options: unknown;
  keep: boolean;
  clientAddress: string | null;
  sink: SessionSink;
}

/** RUNNING accepts sessions; CLOSING refuses new ones while the live ones stop. */
type RegistryState = 'RUNNING' | 'CLOSING';

/**
 * Every live session, by its server-generated id. Starts sessions (after admission: capacity,
 * pipeline, options, loop threads), routes thread events to them, and stops them all on close.
 */
export class SessionRegistry {
  readonly #opts: RegistryOptions;
  readonly #live = new Map<string, Session>();
  /** Ended sessions still inspectable, oldest end first; bounded by count and age. */
  readonly #ended = new Map<string, Session>();
  #state: RegistryState = 'RUNNING';
  /** Admitted sessions (detached ones included) by client address, for MAX_SESSIONS_PER_CLIENT. */
  readonly #byAddress = new Map<string, number>();
  /** Loop-shaped sides reserved by admitted sessions (one loop-pool thread each). */
  #loopSides = 0;
  /**
   * Sessions holding a place under MAX_SESSIONS: from admission until nothing of them runs
   * (Session's onReleased, just before `stopped` is sent), not until their folder is gone.
   */
  #admitted = 0;
  readonly #ledger: SessionLedger;

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
    this.#ledger = opts.ledger ?? LOCAL_LEDGER;
  }

  get closing(): boolean {
    return this.#state === 'CLOSING';
  }

  get size(): number {
    return this.#live.size;
  }

  /** Sessions holding a place under MAX_SESSIONS right now. */
  get admitted(): number {
    return this.#admitted;
  }

  /** Admits and starts a session. Throws a coded error that says what to fix. */
  async start(req: StartRequest): Promise<Session> {
    if (this.#state !== 'RUNNING') throw refusals.shuttingDown();
    if (this.#admitted >= this.#opts.maxSessions) {
      throw refusals.tooManySessions(this.#opts.maxSessions);
    }
    if (req.keep && !this.#opts.keepAllowed) {
      throw tandemError('KEEP_NOT_ALLOWED', 'this service does not keep spools (KEPT_SPOOLS_ALLOWED is false); send START without keep');
    }
    const { catalog } = this.#opts;
    const entry = catalog.resolve(req.pipeline);
    const prepared = await catalog.prepare(entry, req.url, req.options);
    // A client-fed session runs no producer of its own: the client's frames are appended on the main thread.
    const clientFed = prepared.clientSampleBytes !== null;
    const loops = (entry.producerShape === 'loop' && !clientFed ? 1 : 0) + (entry.consumerShape === 'loop' ? 1 : 0);
    if (loops > 0 && this.#loopSides + loops > this.#opts.loopMaxThreads) {
      throw tandemError(
        'NO_LOOP_THREADS',
        `pipeline "${entry.name}" needs ${loops} loop thread(s) and ${this.#opts.loopMaxThreads - this.#loopSides} of LOOP_MAX_THREADS=${this.#opts.loopMaxThreads} are free; retry later`,
      );
    }
    // Re-check after the awaits above: shutdown or other starts may have raced us.
    if (this.#state !== 'RUNNING') throw refusals.shuttingDown();
    if (this.#admitted >= this.#opts.maxSessions) {
      throw refusals.tooManySessions(this.#opts.maxSessions);
    }
    const id = randomUUID();
    // The local place and loop threads are held across the ledger's await, so that local starts
    // checked meanwhile see them taken.
    this.#admitted++;
    this.#loopSides += loops;
    const unhold = () => {
      this.#admitted--;
      this.#loopSides -= loops;
    };
    try {
      await this.#ledger.admit(id, req.clientAddress);
    } catch (err) {
      unhold();
      throw err;
    }
    const flags = this.#state === 'RUNNING' ? this.#opts.flags.alloc() : null;
    if (!flags) {
      unhold();
      this.#ledger.released(id);
      if (this.#state !== 'RUNNING') throw refusals.shuttingDown();
      throw tandemError('TOO_MANY_SESSIONS', `${this.#opts.flags.capacity} sessions are running or still ending; retry shortly`);
    }
    const session = new Session({
      id,
      entry,
      url: req.url,
      options: prepared.options,
      input: prepared.input,
      clientSampleBytes: prepared.clientSampleBytes,
      keep: req.keep,
      clientAddress: req.clientAddress,
      spoolDir: spoolDir(this.#opts.dataDir, id),
      pool: this.#opts.pool,
      steps: this.#opts.steps,
      residents: this.#opts.residents,
      timers: this.#opts.timers,
      heldFiles: this.#opts.heldFiles,
      spools: this.#opts.spools,
      flags,
      sink: req.sink,
      onReleased: (s) => this.#onReleased(s, loops),
      onEnded: (s) => this.#onEnded(s),
      flow: this.#opts.flow,
      observer: this.#opts.observer,
      logger: this.#opts.logger,
      batchMax: this.#opts.consumerBatchMax,
      stopGraceMs: this.#opts.stopGraceMs,
      log: this.#opts.log,
      burst: this.#opts.burst,
    });
    this.#live.set(id, session);
    this.#countAddress(req.clientAddress, +1);
    try {
      await session.start();
    } catch (err) {
      await session.stop('failed');
      throw err;
    }
    await this.#ledger.started(session);
    return session;
  }

  /** Nothing of the session runs any more: its admission (place, loop threads, address count) is free. */
  #onReleased(session: Session, loops: number): void {
    this.#admitted--;
    this.#loopSides -= loops;
    this.#countAddress(session.clientAddress, -1);
    this.#ledger.released(session.id);
  }

  /** Moves a session from live to ended the moment it ends (its folder is gone). */
  #onEnded(session: Session): void {
    this.#live.delete(session.id);
    this.#opts.flags.free(session.flagsSlot);
    this.#retain(session);
    if (session.keep) this.#opts.keptSpoolEnded?.(session.id);
    this.#ledger.ended(session);
  }

  /**
   * Re-attaches a running session to the connection of the client that started it (it holds
   * the session's resume secret), replaying every result after `after`.
   * @throws RESUME_FAILED for an unknown, ended or expired session or a wrong secret (one
   * message for all, so ids cannot be probed); RESUME_GAP or BAD_MESSAGE from Session.attach.
   */
  async resume(id: string, secret: string, after: number, sink: SessionSink): Promise<Session> {
    const session = this.#live.get(id);
    if (!session || !tokenMatches(secret, session.resumeSecret) || session.state !== 'running') {
      throw tandemError('RESUME_FAILED', 'no resumable session with that id and secret: it ended, its RESUME_GRACE_MS window passed, or the secret is wrong; send START');
    }
    await session.attach(sink, after);
    return session;
  }

  #retain(session: Session): void {
    if (this.#opts.retainEndedCount === 0) return;
    this.#ended.set(session.id, session);
    this.#prune();
  }

  /** Forgets ended sessions beyond the count or older than the age limit (checked on access: no timer). */
  #prune(now = Date.now()): void {
    for (const [id, s] of this.#ended) {
      const tooMany = this.#ended.size > this.#opts.retainEndedCount;
      const tooOld = now - (s.endedAt ?? now) > this.#opts.retainEndedMs;
      if (!tooMany && !tooOld) break;
      this.#ended.delete(id);
    }
  }

  #countAddress(address: string | null, delta: number): void {
    if (address === null) return;
    const n = (this.#byAddress.get(address) ?? 0) + delta;
    if (n > 0) this.#byAddress.set(address, n);
    else this.#byAddress.delete(address);
  }

  /** Live sessions started from `address`, including those waiting for RESUME. */
  sessionsFrom(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  /** A live session. */
  get(id: string): Session | undefined {
    return this.#live.get(id);
  }

  /** A live session, or an ended one that is still retained. */
  find(id: string): Session | undefined {
    this.#prune();
    return this.#live.get(id) ?? this.#ended.get(id);
  }

  /** Live sessions and the retained ended ones, in no particular order. */
  inspectable(): Session[] {
    this.#prune();
    return [...this.#live.values(), ...this.#ended.values()];
  }

  list(): Session[] {
    return [...this.#live.values()];
  }

  /** Delivers an event a loop posted to the session it belongs to (late events are dropped). */
  route(event: SessionEvent): void {
    const session = this.#live.get(event.sessionId);
    if (!session) return;
    try {
      if (event.type === 'chunk') session.onWorkerChunk(event.chunk);
      else session.onWorkerResult(event.result);
    } catch (err) {
      // This runs in the pool's 'message' listener: a throw here would be an uncaught exception.
      session.onSideError(event.type === 'chunk' ? 'producer' : 'consumer', {
        name: 'InternalError',
        message: `internal error: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }

  /** Refuses new sessions and stops every live one. Safe to call twice. */
  async close(reason: EndReason = 'shutdown'): Promise<SessionSummary[]> {
    this.#state = 'CLOSING';
    return Promise.all(this.list().map((s) => s.stop(reason)));
  }
}
