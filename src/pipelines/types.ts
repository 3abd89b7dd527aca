/**
 * The public API for pipeline authors. A pipeline module's default export is a
 * PipelineDefinition; it is imported both by the main thread (for its name, options and
 * `prepare`) and inside pool threads (for `producer` and `consumer`).
 */

/** JSON Schema (draft 2020-12 subset that Ajv understands) for START's `options`. */
export type OptionsSchema = Record<string, unknown>;

/**
 * What the service tells pipelines about the machine (from config.ts). Built-ins read it; a user
 * pipeline may too.
 */
export interface PipelineSettings {
  /**
   * The built-in recognizer: where its library and model are (POCKETSPHINX_LIBRARY,
   * POCKETSPHINX_MODEL_DIR) and how many loaded decoders a thread keeps between sessions, for how
   * long (SPEECH_IDLE_DECODERS_PER_THREAD, SPEECH_DECODER_IDLE_SECONDS), and how much audio a
   * session takes in while an utterance's final pass runs off its thread (SPEECH_FINAL_PASS_HOLD_MS).
   */
  readonly speech: {
    readonly library: string;
    readonly modelDir: string;
    readonly idleDecodersPerThread: number;
    readonly decoderIdleMs: number;
    readonly finalPassHoldMs: number;
  };
}

export interface PrepareContext {
  /** START's `url`, exactly as sent ('' when absent). */
  readonly url: string;
  readonly settings: PipelineSettings;
  /** START's options after validation and defaults. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * Resolves a `file://` URL to an absolute path, refusing anything outside the configured
   * FILE_ROOT (symlinks included). Throws a BAD_URL error that names the problem.
   */
  resolveFileUrl(url: string): string;
}

interface SideContext<S> {
  readonly sessionId: string;
  readonly url: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Whatever `prepare` returned (plain data). */
  readonly input: unknown;
  /** True once the session is stopping. Loops should return soon after. */
  readonly stopRequested: boolean;
  /**
   * Plain data kept between steps of this side (a file offset, a counter). Assign to it;
   * it is structured-cloned to the next step. Starts as `undefined`.
   */
  state: S | undefined;
}

export interface ProducerContext<S = unknown> extends SideContext<S> {
  /** Writes one complete chunk; it becomes visible to the consumer atomically. Returns its seq. */
  write(data: string | Uint8Array): number;
  /** Blocks up to `ms`; wakes at once on stop. Returns false when the session is stopping. */
  sleep(ms: number): boolean;
}

export interface Chunk {
  /** 1, 2, 3… in the order written. */
  readonly seq: number;
  /**
   * A file holding just this chunk, for tools that want a path. Chunks live inside spool
   * segments, so the file is written on first use (costing a write) and removed once the
   * consumer is done with the chunk. Prefer `bytes()` or `text()`.
   */
  readonly path: string;
  bytes(): Buffer;
  text(): string;
}

export interface ConsumerLoopContext<S = unknown> extends SideContext<S> {
  /**
   * Blocks until the next chunk is complete and returns it, or returns null when the session
   * is stopping, when the producer has finished and every chunk was taken, or after `timeoutMs`.
   */
  next(timeoutMs?: number): Chunk | null;
  /**
   * Whether `next()` would return a chunk at once; waits up to `timeoutMs` (default 0) for one to
   * be complete. False after the timeout, or at once when the session is stopping. For a loop with
   * work of its own between chunks (pocketsphinx.ts completes utterances off its thread).
   */
  chunkReady(timeoutMs?: number): boolean;
  /** Sends the result for the chunk last returned by `next()` (one result per chunk). */
  emit(data: unknown): void;
  /** Blocks up to `ms`; wakes at once on stop. Returns false when the session is stopping. */
  sleep(ms: number): boolean;
}

/** What a producer step may return. */
export interface ProduceStepOutcome {
  /** The next step is due this long after this one was due, in ms (a fixed rate; default 0: as soon as a thread is free). */
  delayMs?: number;
  /** The producer has nothing more to write; the session completes once the consumer catches up. */
  done?: boolean;
}

export interface StepProducer<S = unknown> {
  shape: 'step';
  /** One bounded piece of blocking work; writes zero or more chunks. */
  step(ctx: ProducerContext<S>): ProduceStepOutcome | void | Promise<ProduceStepOutcome | void>;
}

export interface LoopProducer<S = unknown> {
  shape: 'loop';
  /** Runs for the whole session on one thread; return when `ctx.stopRequested` or when done. */
  run(ctx: ProducerContext<S>): void | Promise<void>;
}

export interface StepConsumer<S = unknown> {
  shape: 'step';
  /** Turns one chunk into one result (any JSON-serialisable value). */
  step(ctx: SideContext<S>, chunk: Chunk): unknown;
}

export interface LoopConsumer<S = unknown> {
  shape: 'loop';
  /** Runs for the whole session: `next()` a chunk, `emit()` its result, until `next()` is null. */
  run(ctx: ConsumerLoopContext<S>): void | Promise<void>;
}

export interface PipelineDefinition {
  /** Unique name START refers to: letters, digits, '-', '_'. */
  name: string;
  description?: string;
  /** JSON Schema for START's options; omitted means "no options accepted". */
  options?: OptionsSchema;
  /**
   * The urls START may give this pipeline, as prefixes: `"file://"`, `"demo://"`, `"client:"`,
   * or `"*"` for any url. START with another (non-empty) url is refused with BAD_URL naming
   * these. Default `["*"]`: every url reaches `prepare`, which judges it.
   */
  urls?: readonly string[];
  /**
   * For a pipeline whose `urls` hold `"client:"`: the bytes of one sample (all channels) of the
   * audio a client sends, given START's options after defaults — e.g. 2 for s16le mono, 4 for
   * f32le mono. With `url: "client:"` the pipeline's producer is not run: each binary frame the
   * client sends becomes the next chunk as it is, and a frame whose length is not a whole number
   * of samples is refused with BAD_MESSAGE. Default: 1 (any length). See README "Client audio".
   */
  clientSampleBytes?(options: Readonly<Record<string, unknown>>): number;
  /**
   * Runs once on the main thread when the catalog loads: returns why the pipeline cannot run on
   * this machine (a library or model missing), or null. An unavailable pipeline is listed with
   * the reason and START naming it gets PIPELINE_UNAVAILABLE; the service and /readyz are fine.
   */
  available?(settings: PipelineSettings): string | null;
  /** Runs on the main thread at START: check the URL, compute plain `input` for both sides. */
  prepare?(ctx: PrepareContext): unknown;
  producer: StepProducer | LoopProducer;
  consumer: StepConsumer | LoopConsumer;
}

/** Identity helper that gives a pipeline module its types. */
export function definePipeline(def: PipelineDefinition): PipelineDefinition {
  return def;
}
