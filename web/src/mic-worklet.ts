/**
 * The microphone's AudioWorklet (loaded by microphone.ts from /app/mic-worklet.js; runs on the
 * browser's audio thread, so it imports nothing). It gathers the 128-sample render quanta of its
 * mono input into frames of FRAME_MS and posts each to the page as a Float32Array, transferred,
 * not copied. Posting {flush} makes it post what it holds as the last frame (`last: true`):
 * messages keep their order, so that one comes after every frame before it.
 */

// The AudioWorkletGlobalScope's names; TypeScript's DOM library does not declare them.
declare const sampleRate: number;
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

/** Audio per frame sent to the server: 100 ms (at 48 kHz f32le, 19 200 bytes, 10 frames a second). */
const FRAME_MS = 100;

export interface MicFrame {
  samples: Float32Array;
  last: boolean;
}

class MicCapture extends AudioWorkletProcessor {
  #frame = new Float32Array(Math.round((sampleRate * FRAME_MS) / 1000));
  #filled = 0;

  constructor() {
    super();
    this.port.onmessage = () => this.#post(true);
  }

  process(inputs: Float32Array[][]): boolean {
    // The first channel: a microphone is mono, and the server takes mono.
    const input = inputs[0]?.[0];
    if (!input) return true;
    let at = 0;
    while (at < input.length) {
      const n = Math.min(input.length - at, this.#frame.length - this.#filled);
      this.#frame.set(input.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === this.#frame.length) this.#post(false);
    }
    return true;
  }

  #post(last: boolean): void {
    const samples = this.#frame.slice(0, this.#filled);
    this.port.postMessage({ samples, last } satisfies MicFrame, [samples.buffer]);
    this.#filled = 0;
  }
}

registerProcessor('mic-capture', MicCapture);
