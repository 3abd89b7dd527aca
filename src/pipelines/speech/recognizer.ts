/**
 * What a speech consumer needs from a recognition engine, and nothing more: pocketsphinx is one
 * implementation (./pocketsphinx.ts); whisper.cpp or vosk can be another (README "Live
 * transcription" shows how). An engine sees only audio: 16-bit signed little-endian PCM, mono,
 * 16 kHz, in pieces of any length, whatever produced them (a file, sox, a client's frames).
 */

/** Audio every recognizer takes: samples per second (mono, signed 16-bit). */
export const SAMPLE_RATE_HZ = 16_000;
/** Bytes of one sample. */
export const BYTES_PER_SAMPLE = 2;

export interface Word {
  word: string;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  /** 0..1, the engine's posterior probability of the word. */
  conf: number;
}

/** One completed utterance: what was said between two pauses. */
export interface Utterance {
  text: string;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  /** Present when word timings were asked for. */
  words?: Word[];
}

export interface RecognizerOptions {
  /** Non-speech after which an utterance is complete and becomes final, in ms. */
  silenceMs: number;
  /** Collect word timings and confidences for each final utterance. */
  words: boolean;
}

/**
 * One decoding stream: holds its engine for a whole session, so partials grow as audio arrives.
 * Every method runs on the consumer's own thread; `close()` is safe to call twice.
 */
export interface Recognizer {
  /** Feeds samples (any count); returns the utterances that ended inside them, in order. */
  accept(pcm: Int16Array): Utterance[];
  /** The current hypothesis of the open utterance, or null when nothing is being said. */
  partial(): string | null;
  /** End of the audio: completes the open utterance, if any. */
  finish(): Utterance[];
  /**
   * Optional, for an engine that completes an utterance off the consumer's thread
   * (pocketsphinx.ts): whether one is still being completed. Its final comes from a later
   * `accept()`; the consumer holds its chunk's result back for it (polling `accept` with no
   * samples) until it is complete or the next chunk is there, whichever is first.
   */
  completing?(): boolean;
  /** Ends the stream: frees the engine, or resets it and keeps it for another session (pocketsphinx.ts). */
  close(): void;
}

/**
 * Engines mark silence, breath and noise with filler tokens (`<s>`, `</s>`, `<sil>`, `[NOISE]`,
 * `++UH++`) and alternative pronunciations with a suffix (`read(2)`). Clients see only words.
 */
export function cleanWord(token: string): string | null {
  if (/^<.*>$/.test(token) || /^\[.*\]$/.test(token) || /^\+\+.*\+\+$/.test(token)) return null;
  const word = token.replace(/\(\d+\)$/, '');
  return word === '' ? null : word;
}

/** A hypothesis as the client sees it: words only, single-spaced; null when no word is left. */
export function cleanText(hypothesis: string | null): string | null {
  if (!hypothesis) return null;
  const words = hypothesis.split(/\s+/).map(cleanWord).filter((w): w is string => w !== null);
  return words.length > 0 ? words.join(' ') : null;
}
