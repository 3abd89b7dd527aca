/**
 * `tandem stream --file`: pushes audio to a session as a client would (url `client:`), in 16 KiB
 * frames of s16le 16 kHz mono, at the audio's own pace (or, with `fast`, as fast as the server's
 * backpressure allows), then END; prints each final utterance as a line, and on a terminal the
 * partial hypothesis in place.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import WebSocket from 'ws';
import { openAudio, type AudioSource } from '../pipelines/speech/audio-source.js';
import { isRecognizerPcm, readWavLayout } from '../pipelines/speech/wav.js';

/** Bytes of each frame sent (WhisperLive's size): 512 ms of s16le 16 kHz mono. */
export const FRAME_BYTES = 16 * 1024;
const BYTES_PER_MS = 32;
/** Frames wait while this much is still unsent to the server (it stopped reading: backpressure). */
const SEND_BUFFER_HIGH_BYTES = 256 * 1024;
/** With `fast`, at most this many frames a second: half the server's default MAX_MESSAGES_PER_SECOND. */
const FAST_MAX_FRAMES_PER_SECOND = 50;
const POLL_MS = 10;

export interface AudioStreamOptions {
  server: string;
  pipeline: string;
  /** A file (a 16 kHz mono 16-bit WAV as it is, anything else through sox), or '-' for raw s16le 16 kHz mono PCM on stdin. */
  file: string;
  fast: boolean;
  options: Record<string, unknown> | undefined;
  stdin: Readable;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
}

interface Utterance {
  text: string;
}

/** Resolves with the exit code: 0 when the session completed (or was stopped by Ctrl-C), 1 otherwise. */
export function streamAudio(opts: AudioStreamOptions): Promise<number> {
  const wsUrl = new URL('/ws', opts.server);
  wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  const tty = opts.out.isTTY === true;
  return new Promise((resolve) => {
    // Checked now, opened once the session started: sox's output is read from the moment it runs.
    if (opts.file !== '-') {
      try {
        readWavLayout(opts.file);
        fs.accessSync(opts.file, fs.constants.R_OK);
      } catch (err) {
        opts.err.write(`tandem: cannot read ${opts.file}: ${(err as Error).message}\n`);
        return resolve(1);
      }
    }
    let source: AudioSource | null = null;
    const ws = new WebSocket(wsUrl);
    let ok = false;
    let closing = false;
    let partialShown = false;
    const onSigint = () => {
      opts.err.write('stopping…\n');
      closing = true;
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ command: 'STOP' }));
      else ws.terminate();
    };
    process.on('SIGINT', onSigint);
    const clearPartial = () => {
      if (partialShown) opts.out.write('\r\x1b[K');
      partialShown = false;
    };

    async function feed(): Promise<void> {
      source = opts.file === '-' ? new StdinSource(opts.stdin) : openFile(opts.file);
      const began = performance.now();
      let sentMs = 0;
      let frames = 0;
      for (;;) {
        const pcm = await source.read(FRAME_BYTES);
        if (closing || ws.readyState !== ws.OPEN) return;
        if (!pcm) break;
        if (opts.fast) await until(() => performance.now() - began >= (frames * 1000) / FAST_MAX_FRAMES_PER_SECOND);
        // As from a live source: a frame goes out once its last sample was spoken.
        else await until(() => performance.now() - began >= sentMs + pcm.length / BYTES_PER_MS);
        await until(() => ws.readyState !== ws.OPEN || ws.bufferedAmount < SEND_BUFFER_HIGH_BYTES);
        if (ws.readyState !== ws.OPEN) return;
        ws.send(pcm);
        frames++;
        sentMs += pcm.length / BYTES_PER_MS;
      }
      ws.send(JSON.stringify({ command: 'END' }));
    }

    ws.on('open', () => {
      const start: Record<string, unknown> = { command: 'START', pipeline: opts.pipeline, url: 'client:' };
      if (opts.options !== undefined) start.options = opts.options;
      ws.send(JSON.stringify(start));
    });
    ws.on('message', (data) => {
      let msg: { type?: string; [k: string]: unknown };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        return;
      }
      switch (msg.type) {
        case 'started':
          opts.err.write(`session ${String(msg.session)} started (pipeline ${String(msg.pipeline)}); Ctrl-C stops it\n`);
          feed().catch((err: unknown) => {
            opts.err.write(`tandem: reading ${opts.file} failed: ${(err as Error).message}\n`);
            onSigint();
          });
          break;
        case 'transcript': {
          const result = msg.data as { partial?: string | null; final?: Utterance[] } | null;
          for (const f of result?.final ?? []) {
            clearPartial();
            opts.out.write(`${f.text}\n`);
          }
          if (tty && typeof result?.partial === 'string') {
            opts.out.write(`\r\x1b[K${result.partial}`);
            partialShown = true;
          }
          break;
        }
        case 'error':
          clearPartial();
          opts.err.write(`tandem: ${String(msg.code)}: ${String(msg.message)}\n`);
          break;
        case 'stopped':
          clearPartial();
          ok = msg.reason === 'completed' || msg.reason === 'client';
          opts.err.write(`session ${String(msg.session)} stopped (reason ${String(msg.reason)}, ${String(msg.chunks)} results)\n`);
          break;
      }
    });
    ws.on('error', (err) => opts.err.write(`tandem: cannot stream to ${wsUrl.href}: ${err.message}\n`));
    ws.on('close', () => {
      process.off('SIGINT', onSigint);
      if (opts.file === '-') opts.stdin.destroy();
      void (source?.close() ?? Promise.resolve()).finally(() => resolve(ok ? 0 : 1));
    });
  });
}

function until(ready: () => boolean): Promise<void> {
  if (ready()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!ready()) return;
      clearInterval(timer);
      resolve();
    }, POLL_MS);
  });
}

/** A 16 kHz mono 16-bit WAV is sent as it lies; anything else sox reads is converted. */
function openFile(file: string): AudioSource {
  const layout = readWavLayout(file);
  if (layout && isRecognizerPcm(layout.format, 16_000)) return openAudio({ kind: 'pcm', file, offset: layout.dataOffset, bytes: layout.dataBytes });
  return openAudio({ kind: 'sox', file });
}

/** Raw s16le 16 kHz mono PCM from stdin (`arecord -f S16_LE -r 16000 -c 1`), in whole samples. */
class StdinSource implements AudioSource {
  readonly #input: Readable;
  #held: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(input: Readable) {
    this.#input = input;
    input.on('data', (d: Buffer) => {
      this.#held = Buffer.concat([this.#held, d]);
      if (this.#held.length >= FRAME_BYTES) input.pause();
      this.#wake?.();
    });
    input.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
    input.on('error', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  async read(maxBytes: number): Promise<Buffer | null> {
    // A microphone gives a little at a time: send a full frame, or what came by the end.
    while (this.#held.length < maxBytes && !this.#ended) {
      this.#input.resume();
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
    const take = Math.min(maxBytes, this.#held.length - (this.#held.length % 2));
    if (take === 0) return null;
    const out = this.#held.subarray(0, take);
    this.#held = this.#held.subarray(take);
    return out;
  }

  async close(): Promise<void> {
    // Let go of stdin, or the process would wait for a microphone that never ends.
    this.#input.destroy();
  }
}
