/**
 * A loop-shaped consumer that turns audio chunks into transcripts with any Recognizer. It does
 * not care who produced the chunks (a file, sox, a client's frames): each chunk is PCM,
 * signed 16-bit little-endian, mono, 16 kHz, and an empty chunk says the audio is complete.
 */
import type { ConsumerLoopContext, LoopConsumer } from '../types.js';
import { BYTES_PER_SAMPLE, type Recognizer, type Utterance } from './recognizer.js';

/** The `data` of every transcript a speech pipeline sends (asyncapi.yaml: TranscriptionResult). */
export interface SpeechResult {
  /** The open utterance's current hypothesis; null when nothing is being said or partials are off. */
  partial: string | null;
  /** Utterances completed with this chunk, in order (usually none). */
  final: Utterance[];
}

/** How often a consumer looks whether an utterance's completion off its thread has ended, ms. */
const COMPLETION_POLL_MS = 5;
const NO_SAMPLES = new Int16Array(0);

/** Samples of a chunk, without copying when the buffer is aligned. */
function samples(bytes: Buffer, seq: number): Int16Array {
  if (bytes.length % BYTES_PER_SAMPLE !== 0) {
    throw new Error(`chunk ${seq} holds ${bytes.length} bytes, not a whole number of 16-bit samples`);
  }
  const aligned = bytes.byteOffset % BYTES_PER_SAMPLE === 0 ? bytes : Buffer.from(bytes);
  return new Int16Array(aligned.buffer, aligned.byteOffset, aligned.length / BYTES_PER_SAMPLE);
}

/** Turns chunks of another format (a client's audio: client-audio.ts) into the recognizer's. */
export interface AudioDecoder {
  decode(bytes: Buffer): Int16Array;
  /** End of the audio: samples still held back. */
  flush(): Int16Array;
}

/**
 * Builds the consumer: `open` makes one recognizer for the session (options are in
 * `ctx.options`, prepare's result in `ctx.input`); it is closed in `finally`, however the loop
 * ends. A chunk's result carries the utterances completed since the last result. Honours the
 * option `partials` (default true). `decoder`, when it gives one for the session, converts each
 * chunk first (chunks are otherwise s16le 16 kHz mono already).
 */
export function speechConsumer(open: (ctx: ConsumerLoopContext) => Recognizer, decoder?: (ctx: ConsumerLoopContext) => AudioDecoder | null): LoopConsumer {
  return {
    shape: 'loop',
    run(ctx) {
      // Loading a model takes a while: a session stopped meanwhile need not wait for it.
      if (ctx.stopRequested) return;
      const partials = ctx.options.partials !== false;
      const decode = decoder?.(ctx) ?? null;
      const recognizer = open(ctx);
      try {
        for (let chunk = ctx.next(); chunk; chunk = ctx.next()) {
          const bytes = chunk.bytes();
          let final: Utterance[];
          if (bytes.length === 0) final = [...(decode ? recognizer.accept(decode.flush()) : []), ...recognizer.finish()];
          else final = recognizer.accept(decode ? decode.decode(bytes) : samples(bytes, chunk.seq));
          // An utterance being completed off this thread: its final goes out with this chunk's
          // result if it is ready before the next chunk is, so a pause in the audio never holds
          // it back; otherwise it rides on a later one.
          while (final.length === 0 && recognizer.completing?.() && !ctx.chunkReady(COMPLETION_POLL_MS) && !ctx.stopRequested) {
            final = recognizer.accept(NO_SAMPLES);
          }
          const result: SpeechResult = { partial: partials ? recognizer.partial() : null, final };
          ctx.emit(result);
        }
      } finally {
        recognizer.close();
      }
    },
  };
}
