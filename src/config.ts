import type { ResidentLimits } from './pool/residents.js';
import type { ResidentGrouping } from './pool/residents-thread.js';
import type { LendLimits } from './sessions/pacing.js';
import { QUIET_OFF, type QuietLimits } from './pool/quiet-steps.js';
import type { SocketSlotLimits } from './ws/socket-slots.js';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { PipelineSettings } from './pipelines/types.js';
import type { LogPolicy } from './spool/appender.js';
import { parseTrustProxy, type TrustProxy } from './net/trust-proxy.js';
import { processOpenFilesLimit, type HeldFilesLimits } from './spool/held-files.js';
import type { WheelGranularity } from './sessions/timer-wheel.js';

/** The open-file limit assumed where the process's own cannot be read (POSIX's usual soft default). */
const FALLBACK_OPEN_FILES_LIMIT = 1024;
/** The most shared memory STEP_SEND_SOCKETS × STEP_SEND_WRITE_MAX_BYTES may reserve (ws/socket-slots.ts). */
const STEP_SEND_RESERVE_MAX_BYTES = 1024 * 2 ** 20;

/**
 * Every tunable of the service, read from the environment once at start-up.
 * Each entry names its variable, its default and its unit; README "Configuration" lists them.
 */
const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

const csv = z
  .string()
  .transform((s) => s.split(',').map((v) => v.trim()).filter(Boolean));

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const schema = z.object({
  PORT: intFrom(0, 65535).default(8000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Root of the per-session spool folders. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** Extra folder of pipeline modules (*.js, *.mjs) loaded next to the built-ins. */
  PIPELINES_DIR: z.string().optional(),
  /** Pipeline used when START names none. */
  DEFAULT_PIPELINE: z.string().min(1).default('demo'),
  /** Folder under which `file://` URLs given to pipelines (e.g. `tail`) must resolve. */
  FILE_ROOT: z.string().min(1).default('./logs'),
  /** Step pool: the most threads it runs (default: the CPU count, at least 2). */
  POOL_MAX_THREADS: intFrom(1, 1024).default(Math.max(2, os.availableParallelism())),
  /**
   * Step pool: threads kept when idle (default: POOL_MAX_THREADS, a fixed pool). A fixed pool
   * has no thread start-up on the latency path and its thread count is predictable.
   */
  POOL_MIN_THREADS: intFrom(1, 1024).optional(),
  /**
   * Step pool: threads given work while none is held (default: the CPU count less one, at least
   * 1, at most POOL_MAX_THREADS). The rest are spares, used only while a thread is held by a step
   * past STEP_BATCH_STALL_MS; the main thread keeps a core of its own.
   */
  POOL_ACTIVE_THREADS: intFrom(1, 1024).optional(),
  /** Loop pool: each loop-shaped side holds one of these threads for its whole session. */
  LOOP_MAX_THREADS: intFrom(0, 4096).default(64),
  /** How long an idle pool thread above the minimum lives, in ms. */
  POOL_IDLE_TIMEOUT_MS: intFrom(0).default(30_000),
  /** Per-thread V8 heap cap in MiB (0 = Node's default). */
  WORKER_MAX_HEAP_MB: intFrom(0).default(256),
  /** Chunks a step consumer takes in one task when it has fallen behind. */
  CONSUMER_BATCH_MAX: intFrom(1, 10_000).default(32),
  /** Cooperative stop window before a side's worker is terminated, in ms. */
  STOP_GRACE_MS: intFrom(0, 600_000).default(2000),
  /**
   * How long a forced stop waits for the terminated thread to exit before it reports the session
   * stopped, in ms. A thread blocked in a native call exits only when that call returns.
   */
  STOP_EXIT_WAIT_MS: intFrom(0, 600_000).default(2000),
  /** Upper bound on a graceful shutdown (SIGTERM/SIGINT), in ms. */
  SHUTDOWN_TIMEOUT_MS: intFrom(0, 600_000).default(10_000),
  /** Sessions allowed at once across all clients. */
  MAX_SESSIONS: intFrom(1).default(20_000),
  /**
   * Largest client frame accepted, in bytes; a larger one closes the connection 1009 and ends its
   * session. 64 KiB takes 16 KiB audio frames (WhisperLive's) with room to spare, and up to
   * 340 ms of 48 kHz f32le mono per frame.
   */
  MAX_MESSAGE_BYTES: intFrom(64, 16 * 1024 * 1024).default(64 * 1024),
  /** Largest HTTP request body read, in bytes; larger → 413 (no operation takes a body today). */
  MAX_REQUEST_BODY_BYTES: intFrom(0, 16 * 1024 * 1024).default(16 * 1024),
  /** Exact origins (scheme://host[:port]) whose browsers may open a WebSocket; default: the service's own. */
  ALLOWED_ORIGINS: csv.optional(),
  /** When set, WebSocket clients must present it (Authorization: Bearer, or subprotocol `bearer.<token>`). */
  CLIENT_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .regex(/^[A-Za-z0-9._~-]+$/, 'may use only letters, digits and . _ ~ - (it travels in a header and a subprotocol)')
    .optional(),
  /** Extra Host names accepted while bound to loopback (DNS-rebinding guard); localhost, 127.0.0.1 and ::1 always are. */
  ALLOWED_HOSTS: csv.optional(),
  /**
   * Proxies whose `Forwarded` / `X-Forwarded-For` name the client (comma list of addresses and
   * CIDR blocks, or `loopback`); unset: the headers are ignored and the client is the socket's peer.
   */
  TRUST_PROXY: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseTrustProxy(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  /** Open WebSocket connections allowed per client address (0 = no limit). */
  MAX_SESSIONS_PER_CLIENT: intFrom(0).default(1000),
  /**
   * Client frames allowed per connection per second (bursts of twice that); above it: close 1008.
   * Real-time audio needs 48000 × 4 / 16384 ≈ 11.7 frames/s at 48 kHz f32le in 16 KiB frames;
   * 100 also admits 10 ms frames (WebRTC's size) at any rate.
   */
  MAX_MESSAGES_PER_SECOND: intFrom(1, 100_000).default(100),
  /** Ping period in ms; a peer that has not answered the previous ping is dropped (0 = off). */
  HEARTBEAT_INTERVAL_MS: intFrom(0, 3_600_000).default(15_000),
  /** A client's send buffer above this many bytes pauses its results (and then its consumer). */
  SEND_BUFFER_HIGH_BYTES: intFrom(1024).default(1024 * 1024),
  /** Chunks waiting on disk per session before its producer is paused. */
  SPOOL_QUOTA_CHUNKS: intFrom(1).default(10_000),
  /** Bytes waiting on disk per session before its producer is paused. */
  SPOOL_QUOTA_BYTES: intFrom(1024).default(256 * 1024 * 1024),
  /** How long a session whose connection dropped waits for RESUME, ms (0 = it ends at once). */
  RESUME_GRACE_MS: intFrom(0, 3_600_000).default(60_000),
  /** Results kept on disk per session for RESUME: at most this many bytes (whole segments are dropped)... */
  RESUME_RETAIN_BYTES: intFrom(0).default(64 * 1024 * 1024),
  /** ...and none older than this many seconds. A client that was gone for less resumes with no gap. */
  RESUME_RETAIN_SECONDS: intFrom(1, 7 * 24 * 3600).default(120),
  /**
   * A results segment is closed for its age (every RESUME_RETAIN_SECONDS / 4) only once it holds
   * this many bytes; a slower session keeps its older results instead, up to this much more per
   * session (0: closed for its age alone, a new file every 30 s per session at the default).
   */
  RESUME_SEGMENT_MIN_BYTES: intFrom(0, 1024 * 1024 * 1024).default(64 * 1024),
  /**
   * Segment files the service keeps open for its sessions' steps (two a session) so that a step
   * need not open them, at most; sessions beyond it open theirs per step. Below this cap, held
   * files also stay under OPEN_FILES_LIMIT together with the open sockets (spool/held-files.ts).
   */
  SPOOL_HELD_FILES_MAX: intFrom(0, 1_000_000).default(65_536),
  /** The open-file limit held segment files must leave room under (0: the process's own, as Node sets it: normally `ulimit -Hn`). */
  OPEN_FILES_LIMIT: intFrom(0).default(0),
  /** Descriptors under OPEN_FILES_LIMIT never spent on held segments: HTTP connections, steps' own opens, children, logs. */
  OPEN_FILES_RESERVE: intFrom(0).default(1024),
  /** How long a session asked to give its held files back counts as about to, in ms; past it (a hung step) others are asked instead. */
  SPOOL_HELD_FILES_ASK_MS: intFrom(0, 600_000).default(1000),
  /** A spool segment file is closed and the next begun once it holds this many bytes. */
  SPOOL_SEGMENT_BYTES: intFrom(4096, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  /**
   * Ended sessions' spool folders removed at once within SPOOL_REMOVAL_QUIET_MS; in a storm of
   * STOPs the ones beyond them wait, so the sockets close first.
   */
  SPOOL_REMOVAL_STORM_SESSIONS: intFrom(1, 100_000).default(64),
  /** ...the window those are counted in, and the quiet spell (ms) waiting removals go out after (0: removals never wait). */
  SPOOL_REMOVAL_QUIET_MS: intFrom(0, 60_000).default(100),
  /** ...but never waits longer than this after the first waiting one, in ms. */
  SPOOL_REMOVAL_MAX_DELAY_MS: intFrom(0, 600_000).default(1000),
  /** A removal no step thread has begun within this long (all held by steps that do not return) is done on the main thread. */
  SPOOL_REMOVAL_THREAD_WAIT_MS: intFrom(0, 600_000).default(1000),
  /** Chunks a step producer with nothing to wait for (delayMs 0) writes in one task, at most. */
  PRODUCER_BURST_CHUNKS: intFrom(1, 100_000).default(256),
  /** How long such a burst may run in one task, in ms. */
  PRODUCER_BURST_MS: intFrom(0, 60_000).default(5),
  /**
   * How late a step producer's step may come back (from when it was due to its answer) and the
   * producer still keep its rate, in ms: lateness up to this is taken off the next wait; beyond it
   * the period stretches, so an overloaded service slows its producers instead of queueing work.
   */
  PRODUCER_RATE_SLACK_MS: intFrom(0, 60_000).default(50),
  /** Granularity of the waits between steps, in ms: waits ending in one tick start their steps together (at most this late). */
  STEP_TIMER_TICK_MS: intFrom(1, 1000).default(5),
  /** A longer wait between steps may end up to this share of its length late, in percent (its tick doubled as often as that allows): fuller tasks for slow producers. */
  STEP_TIMER_SLACK_PERCENT: intFrom(0, 100).default(0),
  /** The most a wait between steps may end late for STEP_TIMER_SLACK_PERCENT, in ms. */
  STEP_TIMER_MAX_SLACK_MS: intFrom(0, 60_000).default(40),
  /** Most steps (of different sessions) sent to a pool thread in one task. */
  STEP_BATCH_MAX: intFrom(1, 10_000).default(64),
  /** The steps of one turn are spread over several threads only when each task gets at least this many. */
  STEP_BATCH_SPREAD_MIN: intFrom(1, 10_000).default(8),
  /** A step that ran longer than this, in ms, runs in a task of its own next time. */
  STEP_BATCH_SOLO_MS: intFrom(0, 600_000).default(10),
  /** A task's thread posts the answers of the steps it ran so far once this many µs passed since the task began or its last post; 0: one answer per task. */
  STEP_BATCH_ANSWER_US: intFrom(0, 10_000_000).default(500),
  /** A step still running after this many ms has the other steps of its task taken back and sent again. */
  STEP_BATCH_STALL_MS: intFrom(1, 600_000).default(100),
  /** One call of a step-shaped producer's or consumer's step still running after this many ms is ended and fails its session; 0: never. */
  STEP_TIMEOUT_MS: intFrom(0, 3_600_000).default(60_000),
  /**
   * A step consumer is lent to its producer's tasks (and kept with a resident) only while it is
   * quick: a run is slow when the consumer's own calls took more than this per chunk, ms
   * (sessions/pacing.ts). A slow consumer runs in tasks of its own, so it never delays its producer.
   */
  STEP_LEND_CONSUMER_MAX_MS: intFrom(0, 3_600_000).default(2),
  /**
   * How many slow runs in a row judge a step consumer slow; one quick run judges it quick again. A
   * thread that lost its core in the middle of one run says nothing of its consumer.
   */
  STEP_LEND_CONSUMER_SLOW_RUNS: intFrom(1, 1000).default(3),
  /** One run of a step consumer whose own calls took longer than this in all, ms, judges it slow at once. */
  STEP_LEND_CONSUMER_RUN_MAX_MS: intFrom(0, 3_600_000).default(50),
  /**
   * Whether a step producer whose steps wait at least STEP_RESIDENT_MIN_MS, with a consumer quick
   * enough to be lent to it, is kept by a step thread, which then runs its steps on its own ticks
   * (docs/PERFORMANCE.md, "Resident steps on main"). Off: every step goes through the main
   * thread's timer and a batch.
   */
  STEP_RESIDENTS: bool.default(true),
  /** Most resident step producers one step thread keeps (they fill one thread before the next). */
  STEP_RESIDENTS_PER_THREAD: intFrom(1, 1_000_000).default(5000),
  /**
   * Step producers' steps a second, all of them together (resident or not) and per active step
   * thread, above which no producer is made resident; past it by a quarter, residents go back to
   * the main thread's path. Residents pay where the steps are few (steady: 667 a second) and cost
   * the crowd's tail and CPU where they are many (10,000): docs/PERFORMANCE.md, "Fewer residents,
   * a lower crowd tail". 0: no limit.
   */
  STEP_RESIDENTS_MAX_LOAD: intFrom(0, 10_000_000).default(3000),
  /**
   * How long the step producers' load must stay at or under STEP_RESIDENTS_MAX_LOAD, after it was
   * last above it, before producers are made resident again, ms: a load that swings around the
   * limit (a crowd starting) does not make thousands of producers come and go (pool/step-load.ts).
   */
  STEP_RESIDENTS_LOAD_HOLD_MS: intFrom(0, 3_600_000).default(10_000),
  /** The least wait between a step producer's steps, in ms, that makes it resident (STEP_RESIDENTS). */
  STEP_RESIDENT_MIN_MS: intFrom(1, 3_600_000).default(10),
  /**
   * About how many resident steps a step thread runs per wake-up: while its residents fall due
   * fewer than this to a STEP_TIMER_TICK_MS tick, their waits end on coarser boundaries (the tick
   * doubled, within STEP_RESIDENT_SLACK_PERCENT of each wait and STEP_TIMER_MAX_SLACK_MS). 0: every
   * wait ends on the tick.
   */
  STEP_RESIDENT_GROUP_STEPS: intFrom(0, 10_000).default(16),
  /** How late a resident's wait may end for STEP_RESIDENT_GROUP_STEPS, in percent of its length. */
  STEP_RESIDENT_SLACK_PERCENT: intFrom(0, 100).default(3),
  /**
   * Whether a step thread writes the `transcript` frames of the results it just appended into the
   * client's socket itself, rather than the main thread when the step's answer arrives
   * (ws/socket-slots.ts; docs/PERFORMANCE.md, "The worker writes the frame"). Off: the main thread
   * sends every frame.
   */
  STEP_SENDS: bool.default(true),
  /**
   * With STEP_SENDS, how long a step thread gathers its residents' answers whose results it sent
   * itself before it posts them to the main thread, ms (0: at the end of every tick). The main
   * thread's counters and views lag its clients by up to this much; a resident whose thread is
   * held is taken back this much after STEP_BATCH_STALL_MS.
   */
  STEP_RESIDENT_ANSWER_MS: intFrom(0, 1000).default(250),
  /**
   * The most resident answers a step thread posts in one message: a fuller message costs the main
   * thread fewer wake-ups and holds it longer (about 16 µs an answer here) once it arrives.
   */
  STEP_RESIDENT_ANSWER_MAX: intFrom(1, 10_000).default(128),
  /**
   * With STEP_SENDS, a resident step whose thread sent all its results and that needs nothing else
   * of the main thread is not answered: its thread publishes it and writes what it came to into
   * shared memory, with the pipeline's two states as JSON of at most this many bytes (0: every
   * step is answered). A step whose states are larger, or not plain JSON, is answered as before.
   */
  STEP_QUIET_STATE_BYTES: intFrom(0, 65_536).default(512),
  /** How many results of quiet steps may wait for the main thread to read their timings; a step past it is answered. */
  STEP_QUIET_SAMPLES: intFrom(1, 4096).default(64),
  /** How often the main thread reads what the residents' quiet steps came to (counts, metrics, inspect), ms. */
  STEP_QUIET_CATCH_UP_MS: intFrom(10, 60_000).default(500),
  /** Client sockets step threads may write into at once (STEP_SENDS); past it, a connection's frames go through the main thread. */
  STEP_SEND_SOCKETS: intFrom(1, 1_000_000).default(16_384),
  /** The most bytes a step thread writes into a socket in one call (and holds of a half-written frame); longer frames go through the main thread. */
  STEP_SEND_WRITE_MAX_BYTES: intFrom(256, 1024 * 1024).default(2048),
  /** GET /readyz answers 503 when the step pool does not run a probe task within this many ms. */
  READY_PROBE_TIMEOUT_MS: intFrom(1, 60_000).default(1000),
  /** Whether START may ask to keep its spool after the session ends (`keep: true`); refused when false. */
  KEPT_SPOOLS_ALLOWED: bool.default(false),
  /** Total bytes of kept spools; above it the oldest kept spools are removed first. */
  KEPT_SPOOLS_MAX_BYTES: intFrom(0).default(1024 * 1024 * 1024),
  /** A kept spool older than this (since its session ended) is removed, in seconds. */
  KEPT_SPOOLS_MAX_AGE_SECONDS: intFrom(1, 10 * 365 * 24 * 3600).default(7 * 24 * 3600),
  /** How often kept spools are checked against the quota and the age, in seconds. */
  KEPT_SPOOLS_SWEEP_INTERVAL_SECONDS: intFrom(1, 24 * 3600).default(60),
  /**
   * When spool writes reach the disk: `none` (page cache: survives a killed process, not a power
   * loss), `batch` (fsync at most every SPOOL_FSYNC_INTERVAL_MS and at each segment's end),
   * `always` (every write, before its records become visible). `true`/`false` mean always/none.
   */
  SPOOL_FSYNC: z
    .enum(['none', 'batch', 'always', 'true', 'false', '1', '0'])
    .transform((v) => (v === 'true' || v === '1' ? 'always' : v === 'false' || v === '0' ? 'none' : v))
    .default('none'),
  /** With SPOOL_FSYNC=batch: the longest a written record waits for its fsync, in ms. */
  SPOOL_FSYNC_INTERVAL_MS: intFrom(1, 60_000).default(200),
  /** Bearer token for /api/* (everything, stop included). Required when HOST is not loopback. At least 16 characters. */
  ADMIN_TOKEN: z.string().min(16).regex(/^\S+$/, 'must not contain whitespace').optional(),
  /** Second bearer token for /api/* that may list and inspect but not stop. Needs ADMIN_TOKEN. */
  ADMIN_READ_TOKEN: z.string().min(16).regex(/^\S+$/, 'must not contain whitespace').optional(),
  /** Ended sessions kept for GET /api/sessions and inspect (0 = forget at once). */
  SESSION_RETAIN_COUNT: intFrom(0, 1_000_000).default(1000),
  /** How long an ended session stays inspectable, in seconds. */
  SESSION_RETAIN_SECONDS: intFrom(0, 7 * 24 * 3600).default(300),
  /** The `transcribe` pipeline's recognizer library: a path or a soname (Debian: libpocketsphinx3). */
  POCKETSPHINX_LIBRARY: z.string().min(1).default('libpocketsphinx.so.3'),
  /** Folder of its en-us model: `en-us/`, `en-us.lm.bin`, `cmudict-en-us.dict` (Debian: pocketsphinx-en-us). */
  POCKETSPHINX_MODEL_DIR: z.string().min(1).default('/usr/share/pocketsphinx/model/en-us'),
  /**
   * Loaded decoders a pool thread keeps between `transcribe` sessions, to lend to the next one
   * instead of loading the model again (~100 MB and 0.3–1 s of CPU each; 0 = load per session).
   */
  SPEECH_IDLE_DECODERS_PER_THREAD: intFrom(0, 16).default(1),
  /** How long an idle decoder is kept before it is freed, in seconds (loop threads live this long + 1 s). */
  SPEECH_DECODER_IDLE_SECONDS: intFrom(1, 3600).default(5),
  /**
   * Audio, in ms, a `transcribe` session takes in while an utterance's final pass runs on a thread
   * of its own; past it, the consumer waits for the pass (0 = the pass runs on the consumer's thread).
   */
  SPEECH_FINAL_PASS_HOLD_MS: intFrom(0, 60_000).default(1000),
  /** Live view (GET /api/live): how often the stream looks for changes to send, in ms. */
  LIVE_INTERVAL_MS: intFrom(100, 60_000).default(500),
  /** Live view: viewers streaming at once; one more is refused with 503 TOO_MANY_VIEWERS (0 = the stream is off). */
  LIVE_MAX_VIEWERS: intFrom(0, 10_000).default(16),
  /**
   * How often the event loop's lag is sampled for the `tandem_nodejs_eventloop_lag_*` metrics, ms:
   * each sample wakes the main thread, and prom-client's 10 ms cost steady's main thread some 30 %
   * of its CPU per result (docs/PERFORMANCE.md, "The loop-delay sampler woke the main thread").
   */
  METRICS_LOOP_DELAY_RESOLUTION_MS: intFrom(1, 60_000).default(100),
  /** Live view: bytes a viewer may leave unread; a viewer over this (slow, stalled) is dropped. */
  LIVE_VIEWER_BUFFER_BYTES: intFrom(1024, 256 * 1024 * 1024).default(1024 * 1024),
  /** Live view: a comment line is sent after this many ms without an event, so idle viewers and proxies see the stream alive. */
  LIVE_HEARTBEAT_MS: intFrom(1000, 3_600_000).default(15_000),
  /** Live view: most sessions in one snapshot (newest first; the totals count all). */
  LIVE_MAX_SESSIONS: intFrom(1, 10_000).default(200),
  /** Live view: how far back the charts go, in seconds (one sample per second). */
  LIVE_HISTORY_SECONDS: intFrom(10, 3600).default(300),
  /** Redis shared by the instances of one cluster (redis://host:port); unset = one instance, in memory. */
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  /** Prefix of every key the cluster keeps in Redis (several clusters may share one Redis). */
  REDIS_PREFIX: z.string().min(1).regex(/^[^{}\s]+$/, 'may not contain braces or whitespace (keys carry a hash tag)').default('tandem:'),
  /** A Redis command without an answer after this many ms fails (START then answers 503). */
  REDIS_COMMAND_TIMEOUT_MS: intFrom(10, 60_000).default(1000),
  /** How often an instance renews its lease and refreshes its sessions' records, in ms. */
  CLUSTER_HEARTBEAT_MS: intFrom(50, 60_000).default(1000),
  /** An instance whose lease is older than this many ms is lost: others fail its sessions. */
  CLUSTER_LEASE_MS: intFrom(100, 600_000).default(5000),
  /** How long an instance waits for another's answer (inspect, stop, relay), in ms. */
  CLUSTER_CALL_TIMEOUT_MS: intFrom(10, 600_000).default(2000),
  /** How the other instances reach this one (http://host:port); default http://HOST:<bound port>. */
  INSTANCE_URL: z.string().regex(/^https?:\/\/[^/]+\/?$/, 'must be http(s)://host:port').optional(),
  /** This instance's name in the cluster (default: a random UUID per start). */
  INSTANCE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'may use 1 to 64 letters, digits and . _ -').optional(),
});

export type EnvConfig = z.infer<typeof schema>;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly logLevel: EnvConfig['LOG_LEVEL'];
  readonly dataDir: string;
  readonly pipelinesDir: string | undefined;
  readonly defaultPipeline: string;
  readonly fileRoot: string;
  readonly pool: {
    readonly minThreads: number;
    readonly maxThreads: number;
    /** POOL_ACTIVE_THREADS, resolved. */
    readonly activeThreads: number;
    /** STEP_BATCH_STALL_MS: a step thread running one job this long is held, and a spare may take work. */
    readonly heldAfterMs: number;
    readonly loopMaxThreads: number;
    readonly idleTimeoutMs: number;
    readonly loopIdleTimeoutMs: number;
    readonly maxHeapMb: number;
    readonly exitWaitMs: number;
  };
  readonly consumerBatchMax: number;
  readonly stopGraceMs: number;
  readonly shutdownTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxMessageBytes: number;
  readonly maxRequestBodyBytes: number;
  /** How the spool's logs are written and kept (spool/appender.ts). */
  readonly log: LogPolicy;
  /** A step producer's longest burst in one task, and how late its steps may be and keep its rate. */
  readonly burst: { readonly maxChunks: number; readonly maxMs: number; readonly rateSlackMs: number };
  /** Descriptors held open on sessions' log segments, and the open-file room they must leave (spool/held-files.ts). */
  readonly heldFiles: HeldFilesLimits;
  /** How coarse the waits between steps may be (sessions/timer-wheel.ts). */
  readonly stepTimer: WheelGranularity;
  /** How steps of many sessions share pool tasks (pool/step-batcher.ts). */
  readonly batch: { readonly maxEntries: number; readonly spreadMin: number; readonly soloMs: number; readonly stallMs: number; readonly timeoutMs: number; readonly answerUs: number };
  /** Step producers kept by step threads (pool/residents.ts, STEP_RESIDENTS); null when off. */
  readonly residents: ResidentLimits | null;
  /** Step threads write results' frames into clients' sockets (ws/socket-slots.ts, STEP_SENDS); null when off. */
  readonly stepSends: SocketSlotLimits | null;
  /** How long a step thread gathers resident answers whose results it sent, ms (STEP_RESIDENT_ANSWER_MS; 0 without STEP_SENDS). */
  readonly residentAnswerMs: number;
  /** The most resident answers in one message (STEP_RESIDENT_ANSWER_MAX). */
  readonly residentAnswerMax: number;
  /** Resident steps that need no answer (pool/quiet-steps.ts; STEP_QUIET_STATE_BYTES, STEP_QUIET_SAMPLES): off without STEP_SENDS and STEP_RESIDENTS. */
  readonly quiet: QuietLimits;
  /** How a step thread groups its residents' waits (STEP_RESIDENT_GROUP_STEPS, STEP_RESIDENT_SLACK_PERCENT, STEP_TIMER_MAX_SLACK_MS). */
  readonly residentGrouping: ResidentGrouping;
  /** When a step consumer is quick enough to be lent (sessions/pacing.ts; STEP_LEND_CONSUMER_MAX_MS, STEP_LEND_CONSUMER_SLOW_RUNS, STEP_LEND_CONSUMER_RUN_MAX_MS). */
  readonly lendConsumer: LendLimits;
  /** How long ended sessions' spool removals wait while they keep coming (sessions/spool-remover.ts). */
  readonly spoolRemoval: { readonly stormSessions: number; readonly quietMs: number; readonly maxMs: number; readonly threadWaitMs: number };
  readonly allowedOrigins: readonly string[] | undefined;
  readonly clientToken: string | undefined;
  /** Proxies whose forwarding headers name the client (src/net/client-address.ts); undefined: none. */
  readonly trustProxy: TrustProxy | undefined;
  readonly maxSessionsPerClient: number;
  readonly maxMessagesPerSecond: number;
  readonly heartbeatIntervalMs: number;
  /** METRICS_LOOP_DELAY_RESOLUTION_MS (metrics/event-loop.ts). */
  readonly loopDelayResolutionMs: number;
  readonly sendBufferHighBytes: number;
  readonly readyProbeTimeoutMs: number;
  /**
   * Host names a request may name while the service is bound to loopback (a browser page that
   * re-binds its own name to 127.0.0.1 must not reach the open API); undefined when not on loopback.
   */
  readonly allowedHosts: readonly string[] | undefined;
  readonly flow: {
    readonly spoolQuotaChunks: number;
    readonly spoolQuotaBytes: number;
    readonly resumeGraceMs: number;
  };
  /** Tokens of the REST control plane; `admin` undefined means /api/* is open (loopback only). */
  readonly tokens: { readonly admin: string | undefined; readonly read: string | undefined };
  readonly sessionRetainCount: number;
  readonly sessionRetainMs: number;
  /** The built-in recognizer's settings, as pipelines get them (PipelineSettings in pipelines/types.ts). */
  readonly speech: PipelineSettings['speech'];
  /** Spools a client may keep after its session (START `keep: true`), bounded in bytes and age. */
  readonly keptSpools: {
    readonly allowed: boolean;
    readonly maxBytes: number;
    readonly maxAgeMs: number;
    readonly sweepIntervalMs: number;
  };
  /** The live view's stream (src/web); README "Live view". */
  readonly live: LiveLimits;
  /** Several instances on one Redis (src/cluster); undefined when REDIS_URL is unset. */
  readonly cluster: ClusterConfig | undefined;
}

export interface ClusterConfig {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  readonly callTimeoutMs: number;
  /** Undefined: http://HOST:<bound port>, known once the port is bound. */
  readonly instanceUrl: string | undefined;
  readonly instanceId: string | undefined;
}

export interface LiveLimits {
  readonly intervalMs: number;
  readonly maxViewers: number;
  readonly viewerBufferBytes: number;
  readonly heartbeatMs: number;
  readonly maxSessions: number;
  readonly historySeconds: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment and returns a frozen Config.
 * @throws ConfigError naming every variable that is wrong.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? '?');
      // Never echo a secret into logs.
      const shown = name.endsWith('_TOKEN') ? '[redacted]' : JSON.stringify(picked[name] ?? '');
      return `${name}=${shown}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const minThreads = e.POOL_MIN_THREADS ?? e.POOL_MAX_THREADS;
  if (minThreads > e.POOL_MAX_THREADS) {
    throw new ConfigError(
      `invalid configuration: POOL_MIN_THREADS=${e.POOL_MIN_THREADS} is above POOL_MAX_THREADS=${e.POOL_MAX_THREADS}`,
    );
  }
  if (e.STEP_SENDS && e.STEP_SEND_SOCKETS * e.STEP_SEND_WRITE_MAX_BYTES > STEP_SEND_RESERVE_MAX_BYTES) {
    throw new ConfigError(
      `invalid configuration: STEP_SEND_SOCKETS=${e.STEP_SEND_SOCKETS} × STEP_SEND_WRITE_MAX_BYTES=${e.STEP_SEND_WRITE_MAX_BYTES} reserves more than ${STEP_SEND_RESERVE_MAX_BYTES / 2 ** 20} MiB of shared memory; lower one of them`,
    );
  }
  if (e.ADMIN_READ_TOKEN !== undefined && e.ADMIN_TOKEN === undefined) {
    throw new ConfigError('invalid configuration: ADMIN_READ_TOKEN is set but ADMIN_TOKEN is not; set ADMIN_TOKEN too');
  }
  if (e.ADMIN_READ_TOKEN !== undefined && e.ADMIN_READ_TOKEN === e.ADMIN_TOKEN) {
    throw new ConfigError('invalid configuration: ADMIN_READ_TOKEN must differ from ADMIN_TOKEN');
  }
  if (e.SHUTDOWN_TIMEOUT_MS <= e.STOP_GRACE_MS) {
    throw new ConfigError(
      `invalid configuration: SHUTDOWN_TIMEOUT_MS=${e.SHUTDOWN_TIMEOUT_MS} must be above STOP_GRACE_MS=${e.STOP_GRACE_MS}, or a shutdown could exit before sessions are stopped and their spools removed`,
    );
  }
  if (e.CLUSTER_LEASE_MS <= 2 * e.CLUSTER_HEARTBEAT_MS) {
    throw new ConfigError(
      `invalid configuration: CLUSTER_LEASE_MS=${e.CLUSTER_LEASE_MS} must be above twice CLUSTER_HEARTBEAT_MS=${e.CLUSTER_HEARTBEAT_MS}, or one late heartbeat would declare a live instance lost`,
    );
  }
  if (e.ADMIN_TOKEN === undefined && !isLoopback(e.HOST)) {
    throw new ConfigError(
      `refusing to start: HOST=${JSON.stringify(e.HOST)} is not a loopback address and ADMIN_TOKEN is not set, so /api/* would be open to the network; set ADMIN_TOKEN (and optionally ADMIN_READ_TOKEN) or bind HOST=127.0.0.1`,
    );
  }
  if (e.POOL_ACTIVE_THREADS !== undefined && e.POOL_ACTIVE_THREADS > e.POOL_MAX_THREADS) {
    throw new ConfigError(
      `invalid configuration: POOL_ACTIVE_THREADS=${e.POOL_ACTIVE_THREADS} is above POOL_MAX_THREADS=${e.POOL_MAX_THREADS}`,
    );
  }
  const activeThreads = e.POOL_ACTIVE_THREADS ?? Math.min(e.POOL_MAX_THREADS, Math.max(1, os.availableParallelism() - 1));
  // Gathering needs both: only a resident's answers are gathered, only when its thread sent the results.
  const residentAnswerMs = e.STEP_SENDS && e.STEP_RESIDENTS ? e.STEP_RESIDENT_ANSWER_MS : 0;
  return deepFreeze({
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    dataDir: path.resolve(e.DATA_DIR),
    pipelinesDir: e.PIPELINES_DIR ? path.resolve(e.PIPELINES_DIR) : undefined,
    defaultPipeline: e.DEFAULT_PIPELINE,
    fileRoot: path.resolve(e.FILE_ROOT),
    pool: {
      minThreads,
      maxThreads: e.POOL_MAX_THREADS,
      activeThreads,
      heldAfterMs: e.STEP_BATCH_STALL_MS,
      loopMaxThreads: e.LOOP_MAX_THREADS,
      idleTimeoutMs: e.POOL_IDLE_TIMEOUT_MS,
      loopIdleTimeoutMs: loopIdleTimeoutMs(e.POOL_IDLE_TIMEOUT_MS, e.SPEECH_IDLE_DECODERS_PER_THREAD, e.SPEECH_DECODER_IDLE_SECONDS * 1000),
      maxHeapMb: e.WORKER_MAX_HEAP_MB,
      exitWaitMs: e.STOP_EXIT_WAIT_MS,
    },
    consumerBatchMax: e.CONSUMER_BATCH_MAX,
    stopGraceMs: e.STOP_GRACE_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    maxSessions: e.MAX_SESSIONS,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    maxRequestBodyBytes: e.MAX_REQUEST_BODY_BYTES,
    log: {
      segmentBytes: e.SPOOL_SEGMENT_BYTES,
      fsync: e.SPOOL_FSYNC as LogPolicy['fsync'],
      fsyncIntervalMs: e.SPOOL_FSYNC_INTERVAL_MS,
      retainBytes: e.RESUME_RETAIN_BYTES,
      retainMs: e.RESUME_RETAIN_SECONDS * 1000,
      ageRollMinBytes: e.RESUME_SEGMENT_MIN_BYTES,
    },
    burst: { maxChunks: e.PRODUCER_BURST_CHUNKS, maxMs: e.PRODUCER_BURST_MS, rateSlackMs: e.PRODUCER_RATE_SLACK_MS },
    stepTimer: { tickMs: e.STEP_TIMER_TICK_MS, slackPercent: e.STEP_TIMER_SLACK_PERCENT, maxSlackMs: e.STEP_TIMER_MAX_SLACK_MS },
    heldFiles: { max: e.SPOOL_HELD_FILES_MAX, openFilesLimit: e.OPEN_FILES_LIMIT || (processOpenFilesLimit() ?? FALLBACK_OPEN_FILES_LIMIT), reserve: e.OPEN_FILES_RESERVE, askPatienceMs: e.SPOOL_HELD_FILES_ASK_MS },
    batch: { maxEntries: e.STEP_BATCH_MAX, spreadMin: e.STEP_BATCH_SPREAD_MIN, soloMs: e.STEP_BATCH_SOLO_MS, stallMs: e.STEP_BATCH_STALL_MS, timeoutMs: e.STEP_TIMEOUT_MS, answerUs: e.STEP_BATCH_ANSWER_US },
    stepSends: e.STEP_SENDS ? { sockets: e.STEP_SEND_SOCKETS, writeMaxBytes: e.STEP_SEND_WRITE_MAX_BYTES } : null,
    residentAnswerMs,
    residentAnswerMax: e.STEP_RESIDENT_ANSWER_MAX,
    quiet: e.STEP_SENDS && e.STEP_RESIDENTS && e.STEP_QUIET_STATE_BYTES > 0 ? { stateBytes: e.STEP_QUIET_STATE_BYTES, samples: e.STEP_QUIET_SAMPLES } : QUIET_OFF,
    residentGrouping: { steps: e.STEP_RESIDENT_GROUP_STEPS, slackPercent: e.STEP_RESIDENT_SLACK_PERCENT, maxSlackMs: e.STEP_TIMER_MAX_SLACK_MS },
    lendConsumer: { maxMsPerChunk: e.STEP_LEND_CONSUMER_MAX_MS, slowRuns: e.STEP_LEND_CONSUMER_SLOW_RUNS, runMaxMs: e.STEP_LEND_CONSUMER_RUN_MAX_MS },
    residents: e.STEP_RESIDENTS
      ? { perThread: e.STEP_RESIDENTS_PER_THREAD, maxLoadPerS: e.STEP_RESIDENTS_MAX_LOAD, loadHoldMs: e.STEP_RESIDENTS_LOAD_HOLD_MS, minWaitMs: e.STEP_RESIDENT_MIN_MS, stallMs: e.STEP_BATCH_STALL_MS, timeoutMs: e.STEP_TIMEOUT_MS, answerMs: residentAnswerMs, catchUpMs: e.STEP_QUIET_CATCH_UP_MS }
      : null,
    spoolRemoval: { stormSessions: e.SPOOL_REMOVAL_STORM_SESSIONS, quietMs: e.SPOOL_REMOVAL_QUIET_MS, maxMs: e.SPOOL_REMOVAL_MAX_DELAY_MS, threadWaitMs: e.SPOOL_REMOVAL_THREAD_WAIT_MS },
    allowedOrigins: e.ALLOWED_ORIGINS,
    clientToken: e.CLIENT_TOKEN,
    trustProxy: e.TRUST_PROXY,
    maxSessionsPerClient: e.MAX_SESSIONS_PER_CLIENT,
    maxMessagesPerSecond: e.MAX_MESSAGES_PER_SECOND,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    loopDelayResolutionMs: e.METRICS_LOOP_DELAY_RESOLUTION_MS,
    sendBufferHighBytes: e.SEND_BUFFER_HIGH_BYTES,
    readyProbeTimeoutMs: e.READY_PROBE_TIMEOUT_MS,
    allowedHosts: isLoopback(e.HOST)
      ? [...new Set(['localhost', '127.0.0.1', '::1', e.HOST.replace(/^\[|\]$/g, '').toLowerCase(), ...(e.ALLOWED_HOSTS ?? []).map((h) => h.toLowerCase())])]
      : undefined,
    flow: {
      spoolQuotaChunks: e.SPOOL_QUOTA_CHUNKS,
      spoolQuotaBytes: e.SPOOL_QUOTA_BYTES,
      resumeGraceMs: e.RESUME_GRACE_MS,
    },
    tokens: { admin: e.ADMIN_TOKEN, read: e.ADMIN_READ_TOKEN },
    sessionRetainCount: e.SESSION_RETAIN_COUNT,
    sessionRetainMs: e.SESSION_RETAIN_SECONDS * 1000,
    speech: {
      library: e.POCKETSPHINX_LIBRARY,
      modelDir: path.resolve(e.POCKETSPHINX_MODEL_DIR),
      idleDecodersPerThread: e.SPEECH_IDLE_DECODERS_PER_THREAD,
      decoderIdleMs: e.SPEECH_DECODER_IDLE_SECONDS * 1000,
      finalPassHoldMs: e.SPEECH_FINAL_PASS_HOLD_MS,
    },
    live: {
      intervalMs: e.LIVE_INTERVAL_MS,
      maxViewers: e.LIVE_MAX_VIEWERS,
      viewerBufferBytes: e.LIVE_VIEWER_BUFFER_BYTES,
      heartbeatMs: e.LIVE_HEARTBEAT_MS,
      maxSessions: e.LIVE_MAX_SESSIONS,
      historySeconds: e.LIVE_HISTORY_SECONDS,
    },
    keptSpools: {
      allowed: e.KEPT_SPOOLS_ALLOWED,
      maxBytes: e.KEPT_SPOOLS_MAX_BYTES,
      maxAgeMs: e.KEPT_SPOOLS_MAX_AGE_SECONDS * 1000,
      sweepIntervalMs: e.KEPT_SPOOLS_SWEEP_INTERVAL_SECONDS * 1000,
    },
    cluster:
      e.REDIS_URL === undefined
        ? undefined
        : {
            redisUrl: e.REDIS_URL,
            prefix: e.REDIS_PREFIX,
            commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
            heartbeatMs: e.CLUSTER_HEARTBEAT_MS,
            leaseMs: e.CLUSTER_LEASE_MS,
            callTimeoutMs: e.CLUSTER_CALL_TIMEOUT_MS,
            instanceUrl: e.INSTANCE_URL?.replace(/\/$/, ''),
            instanceId: e.INSTANCE_ID,
          },
  });
}

/** True for `localhost` and addresses in 127.0.0.0/8 or ::1 (also IPv4-mapped). */
/**
 * How long an idle loop-pool thread lives, in ms: at most 1 s (loops come and go with sessions),
 * but never less than the idle decoders it may hold (src/pipelines/speech/decoder-shelf.ts). A
 * thread's decoders are native memory only that thread frees, on its own timer; Piscina ends an
 * idle thread with `terminate()`, which runs no JavaScript, so a thread ended while it still held
 * decoders would leak them (~100 MB each). The extra second lets the thread's timer go first.
 */
export function loopIdleTimeoutMs(poolIdleTimeoutMs: number, idleDecodersPerThread: number, decoderIdleMs: number): number {
  const loopIdleMs = Math.min(poolIdleTimeoutMs, 1000);
  return idleDecodersPerThread > 0 ? Math.max(loopIdleMs, decoderIdleMs + 1000) : loopIdleMs;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return net.isIPv6(h) && (h === '::1' || h === '0:0:0:0:0:0:0:1');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
