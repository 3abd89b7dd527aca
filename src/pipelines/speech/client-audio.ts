/**
 * Audio as a client sends it (url `client:`: options `sampleRate` and `encoding`, mono) turned
 * into what every recognizer takes: signed 16-bit PCM at 16 kHz. Runs in the consumer's thread,
 * one decoder per session; it keeps its state between chunks, so where the client cut its frames
 * changes nothing in the samples that come out (no click at a frame boundary).
 */
import { SAMPLE_RATE_HZ } from './recognizer.js';

export type ClientEncoding = 's16le' | 'f32le';

/** Bytes of one sample of each encoding (mono). */
export const ENCODING_BYTES: Record<ClientEncoding, number> = { s16le: 2, f32le: 4 };

/** Zero crossings of the windowed sinc on each side of a sample: sharper cut-off, more work. */
const ZERO_CROSSINGS = 8;
/** The low-pass sits this far below the lower Nyquist frequency, so its transition band stays below it. */
const CUTOFF_FRACTION = 0.9;

/**
 * A streaming windowed-sinc resampler (Hann window). Band-limits to the lower of the two
 * Nyquist frequencies, so downsampling does not alias and upsampling does not image. Input
 * before the first sample is taken as silence; `flush()` gives the tail the window held back.
 */
export class Resampler {
  readonly #inRateHz: number;
  readonly #outRateHz: number;
  readonly #cutoff: number;
  readonly #half: number;
  /** Input samples still needed; #buf[0] is input sample #bufStart (negative: leading silence). */
  #buf: Float64Array;
  #bufLength: number;
  #bufStart: number;
  /** Output samples given so far: the next one lies at input position #n × in / out (computed, never summed, so no drift). */
  #n = 0;

  constructor(inRateHz: number, outRateHz: number) {
    this.#inRateHz = inRateHz;
    this.#outRateHz = outRateHz;
    this.#cutoff = Math.min(1, outRateHz / inRateHz) * CUTOFF_FRACTION;
    this.#half = Math.ceil(ZERO_CROSSINGS / this.#cutoff);
    this.#buf = new Float64Array(Math.max(1024, 4 * this.#half));
    this.#bufLength = this.#half;
    this.#bufStart = -this.#half;
  }

  /** Takes input samples (any count); returns every output sample they complete. */
  push(input: Float64Array | Float32Array): Float64Array {
    this.#append(input);
    return this.#drain();
  }

  /** End of the input: returns the output samples still held back (up to the last input sample). */
  flush(): Float64Array {
    const end = this.#bufStart + this.#bufLength;
    this.#append(new Float64Array(this.#half + 1));
    return this.#drain(end);
  }

  #append(input: Float64Array | Float32Array): void {
    const need = this.#bufLength + input.length;
    if (need > this.#buf.length) {
      const grown = new Float64Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#bufLength));
      this.#buf = grown;
    }
    this.#buf.set(input, this.#bufLength);
    this.#bufLength += input.length;
  }

  /** Outputs while the window around the next position lies within the buffer (and before `limit`). */
  #drain(limit = Infinity): Float64Array {
    const half = this.#half;
    const cutoff = this.#cutoff;
    const bufEnd = this.#bufStart + this.#bufLength;
    const out: number[] = [];
    for (;;) {
      // In integers: t = #n × in / out exactly.
      const scaled = this.#n * this.#inRateHz;
      const centre = Math.floor(scaled / this.#outRateHz);
      if (centre + half >= bufEnd || scaled >= limit * this.#outRateHz) break;
      const t = scaled / this.#outRateHz;
      let sum = 0;
      for (let k = centre - half + 1; k <= centre + half; k++) {
        const d = t - k;
        const x = cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const window = 0.5 * (1 + Math.cos((Math.PI * d) / half));
        sum += this.#buf[k - this.#bufStart]! * cutoff * sinc * window;
      }
      out.push(sum);
      this.#n++;
    }
    // Forget the input no later output reaches back to.
    const keepFrom = Math.floor((this.#n * this.#inRateHz) / this.#outRateHz) - half;
    const drop = Math.max(0, Math.min(this.#bufLength, keepFrom - this.#bufStart));
    if (drop > 0) {
      this.#buf.copyWithin(0, drop, this.#bufLength);
      this.#bufLength -= drop;
      this.#bufStart += drop;
    }
    return Float64Array.from(out);
  }
}

/** One session's client audio → 16-bit 16 kHz PCM, chunk by chunk. */
export class ClientAudioDecoder {
  readonly #encoding: ClientEncoding;
  readonly #resampler: Resampler | null;

  constructor(sampleRateHz: number, encoding: ClientEncoding) {
    this.#encoding = encoding;
    this.#resampler = sampleRateHz === SAMPLE_RATE_HZ ? null : new Resampler(sampleRateHz, SAMPLE_RATE_HZ);
  }

  /** One chunk (a whole number of samples) as 16 kHz samples; a resampler may hold a few back. */
  decode(bytes: Buffer): Int16Array {
    if (!this.#resampler && this.#encoding === 's16le') return s16(bytes);
    const floats = this.#encoding === 'f32le' ? f32(bytes) : Float32Array.from(s16(bytes), (v) => v / 32768);
    return toS16(this.#resampler ? this.#resampler.push(floats) : floats);
  }

  /** End of the audio: the samples the resampler held back. */
  flush(): Int16Array {
    return this.#resampler ? toS16(this.#resampler.flush()) : new Int16Array(0);
  }
}

function s16(bytes: Buffer): Int16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : Buffer.from(bytes);
  return new Int16Array(aligned.buffer, aligned.byteOffset, aligned.length >> 1);
}

function f32(bytes: Buffer): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : Buffer.from(bytes);
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.length >> 2);
}

/** Floats in -1..1 (clipped beyond) as signed 16-bit samples. */
function toS16(x: Float32Array | Float64Array): Int16Array {
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round(x[i]! * 32768);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : Number.isNaN(v) ? 0 : v;
  }
  return out;
}
