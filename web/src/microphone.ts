import type { MicFrame } from './mic-worklet.js';

/**
 * The browser's microphone as a source of client-fed audio (url "client:"): getUserMedia, then an
 * AudioWorklet (mic-worklet.ts) that cuts the audio into 100 ms frames of 32-bit float samples at
 * the AudioContext's own rate. The server resamples (options `sampleRate` and `encoding: "f32le"`),
 * so the page does no signal processing of its own.
 */
export class Microphone {
  readonly #context: AudioContext;
  #stream: MediaStream | null = null;
  #node: AudioWorkletNode | null = null;
  #source: MediaStreamAudioSourceNode | null = null;
  #flushed: (() => void) | null = null;

  /** Call from the click that asks for it: a context made in a user gesture may play. */
  constructor() {
    this.#context = new AudioContext();
  }

  /** Samples a second of the frames this sends (the context's rate, e.g. 48000). */
  get sampleRate(): number {
    return this.#context.sampleRate;
  }

  /** Asks for the microphone and loads the worklet; nothing is captured until capture(). Rejects if refused. */
  async open(): Promise<void> {
    await this.#context.audioWorklet.addModule('/app/mic-worklet.js');
    this.#stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    await this.#context.resume();
  }

  /** Starts sending each frame's bytes (f32le: every browser runs little-endian) to `send`. */
  capture(send: (bytes: ArrayBuffer) => void): void {
    if (!this.#stream || this.#node) return;
    this.#source = this.#context.createMediaStreamSource(this.#stream);
    this.#node = new AudioWorkletNode(this.#context, 'mic-capture', { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit' });
    this.#node.port.onmessage = (e: MessageEvent<MicFrame>) => {
      if (e.data.samples.length > 0) send(e.data.samples.buffer as ArrayBuffer);
      if (e.data.last) this.#flushed?.();
    };
    this.#source.connect(this.#node);
    // Its output is silence; connected so that the context renders (pulls) it.
    this.#node.connect(this.#context.destination);
  }

  /** Stops capturing; resolves once the last frame was handed to `send`. Safe to call twice. */
  async close(): Promise<void> {
    for (const track of this.#stream?.getTracks() ?? []) track.stop();
    this.#stream = null;
    this.#source?.disconnect();
    this.#source = null;
    const node = this.#node;
    this.#node = null;
    if (node) {
      await new Promise<void>((resolve) => {
        this.#flushed = resolve;
        node.port.postMessage('flush');
      });
      node.disconnect();
    }
    if (this.#context.state !== 'closed') await this.#context.close();
  }
}
