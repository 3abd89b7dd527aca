/**
 * The producer of a session started with url `client:`: the client itself. Each binary frame it
 * sends becomes the next chunk, in order, appended on the main thread to the chunks log and
 * published at once (this side owns that log, as a loop does: spool/progress.ts). No thread and
 * no task: the pipeline's own producer is not run.
 *
 * Backpressure (never drop audio): when the spool is at its quota, the socket the frames come
 * from is no longer read (TCP pushes back on the client) until the session finds room again and
 * calls `resume()`. A frame already received is still appended, so the quota may be passed by
 * the frames ws had already read; none is ever dropped. Commands wait behind the audio too
 * (frames are handled in order), so a STOP sent while the socket is paused is read once there is
 * room.
 *
 * END appends one empty chunk, the end-of-audio mark (as the file producer of `transcribe` does),
 * so every consumer, step or loop, gets a chunk to flush its last words on; then the producer is
 * done at that seq and the session completes once every result was delivered.
 */
import { nowMs } from '../pool/flags.js';
import type { ChunkRecord } from '../pool/messages.js';
import { tandemError } from '../errors.js';
import { LogAppender } from '../spool/appender.js';
import { publishChunks, publishProducerDone } from '../spool/progress.js';
import { Side, type SideHost } from './sides.js';

/** Where a client's frames come from: the connection attached to the session (paused = not read). */
export interface FrameSource {
  pause(): void;
  resume(): void;
}

export class ClientProducer extends Side {
  readonly name = 'producer';
  readonly shape = 'client';
  /** A frame's length must be a whole number of these (the pipeline's `clientSampleBytes`). */
  readonly sampleBytes: number;
  #appender: LogAppender | null = null;
  #nextSeq = 1;
  #source: FrameSource | null = null;
  /** The source was paused because the spool is at its quota. */
  #sourcePaused = false;
  #ended = false;

  constructor(host: SideHost, sampleBytes: number) {
    super(host);
    this.sampleBytes = sampleBytes;
  }

  /** Opens the chunks log for the session's life (the spool folder exists by now). */
  start(): void {
    const task = this.host.task();
    this.#appender = new LogAppender(task.spoolDir, 'chunks', this.host.flags, task.log);
    this.state = 'waiting';
  }

  /** The last chunk held on disk (0: none): a resuming client resends the frames after it. */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** True once END was taken: no frame is accepted after it. */
  get ended(): boolean {
    return this.#ended;
  }

  get source(): FrameSource | null {
    return this.#source;
  }

  /** The connection the frames now come from (null: none attached). A new one is paused at once if the spool is full. */
  setSource(source: FrameSource | null): void {
    if (this.#source && this.#sourcePaused) this.#source.resume();
    this.#source = source;
    this.#sourcePaused = false;
    if (source && !this.halted && !this.#ended && !this.host.producerMayRun()) this.#pause();
  }

  /**
   * Appends `frame` as the next chunk and hands it to the session. A frame that arrives once the
   * session is stopping is not taken (nothing would consume it).
   * @throws BAD_MESSAGE for an empty frame, one that is not a whole number of samples, or one after END.
   */
  append(frame: Uint8Array): void {
    if (this.halted) return;
    if (this.#ended) throw tandemError('BAD_MESSAGE', 'binary frame refused: END was sent, the audio is complete');
    if (frame.byteLength === 0) throw tandemError('BAD_MESSAGE', 'binary frame refused: it is empty (send END to say the audio is complete)');
    if (frame.byteLength % this.sampleBytes !== 0) {
      throw tandemError(
        'BAD_MESSAGE',
        `binary frame refused: ${frame.byteLength} bytes is not a whole number of samples of ${this.sampleBytes} bytes (for this session's options)`,
      );
    }
    this.#write(frame);
    if (!this.host.producerMayRun()) this.#pause();
  }

  /**
   * END: the audio is complete. Appends the end-of-audio mark (an empty chunk), then the producer
   * is done at its seq.
   * @throws BAD_MESSAGE when END was already sent.
   */
  end(): void {
    if (this.halted) return;
    if (this.#ended) throw tandemError('BAD_MESSAGE', 'END was already sent for this session');
    this.#ended = true;
    this.#write(new Uint8Array(0));
    publishProducerDone(this.host.flags);
    this.#closeLog();
    this.#unpause();
    this.state = 'done';
    this.steps = this.lastSeq;
    this.host.onProducerDone(this.lastSeq);
  }

  /** The spool has room again: read the socket again. */
  override resume(): void {
    if (this.#sourcePaused) this.#unpause();
  }

  override halt(): void {
    super.halt();
    this.#closeLog();
    // Nothing more is appended: let the socket be read, so its close and commands come through.
    this.#unpause();
  }

  #write(payload: Uint8Array): void {
    const appender = this.#appender!;
    const seq = this.#nextSeq++;
    const record = { seq, timeMs: nowMs(), payload };
    appender.append([record]);
    // Its bytes are in the log: publish it, as a loop does after each record.
    publishChunks(this.host.flags, appender.chunkEnd);
    const chunk: ChunkRecord = { seq, producedAt: record.timeMs, sizeBytes: payload.byteLength };
    this.host.onChunks([chunk]);
  }

  #pause(): void {
    if (this.#sourcePaused || !this.#source) return;
    this.#sourcePaused = true;
    this.state = 'paused';
    this.#source.pause();
  }

  #unpause(): void {
    if (!this.#sourcePaused) return;
    this.#sourcePaused = false;
    if (this.state === 'paused') this.state = 'waiting';
    this.#source?.resume();
  }

  #closeLog(): void {
    this.#appender?.close();
    this.#appender = null;
  }
}
