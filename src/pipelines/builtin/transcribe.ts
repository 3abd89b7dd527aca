/**
 * Live transcription of an audio file: the producer reads it (a 16 kHz mono 16-bit WAV as it
 * is, anything else through sox) and writes `chunkMs` of audio per chunk, at the audio's own
 * pace or as fast as it can; the consumer keeps one pocketsphinx decoder for the session and
 * answers each chunk with the growing partial hypothesis and the utterances a pause completed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { tandemError } from '../../errors.js';
import { openAudio, type AudioInput } from '../speech/audio-source.js';
import { speechConsumer } from '../speech/consumer.js';
import { ClientAudioDecoder, ENCODING_BYTES, type ClientEncoding } from '../speech/client-audio.js';
import { PocketsphinxRecognizer, pocketsphinxProblem, type PocketsphinxSettings } from '../speech/pocketsphinx.js';
import { BYTES_PER_SAMPLE, SAMPLE_RATE_HZ } from '../speech/recognizer.js';
import { isRecognizerPcm, readWavLayout, WavError } from '../speech/wav.js';
import { definePipeline } from '../types.js';

interface TranscribeInput {
  /** The file to read; null when the client sends the audio (url `client:`). */
  audio: AudioInput | null;
  recognizer: PocketsphinxSettings;
}

/** How long `sox --info` may take to say whether it can read a file, in ms. */
const SOX_PROBE_TIMEOUT_MS = 10_000;
const BYTES_PER_MS = (SAMPLE_RATE_HZ * BYTES_PER_SAMPLE) / 1000;

/** Asks sox (on the main thread, awaited, killed on timeout) whether it can read `file`. */
function soxReads(file: string, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sox', ['--info', file], { timeout: SOX_PROBE_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const why = missing ? 'sox is not installed to convert it' : `sox cannot read it: ${stderr.trim().replace(/^sox FAIL formats: /, '') || err.message}`;
      reject(tandemError('BAD_URL', `${url} is not a 16 kHz mono 16-bit WAV and ${why}`));
    });
  });
}

export default definePipeline({
  name: 'transcribe',
  description:
    'Transcribes speech (US English, pocketsphinx) from an audio file under FILE_ROOT or from audio the client sends (url "client:"): partial hypotheses as audio arrives, final utterances at pauses.',
  urls: ['file://', 'client:'],
  clientSampleBytes: (options) => ENCODING_BYTES[options.encoding as ClientEncoding],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      pace: {
        enum: ['realtime', 'fast'],
        default: 'realtime',
        description: 'realtime: chunks at the audio\'s own pace, as from a live source; fast: as fast as the recognizer takes them.',
      },
      chunkMs: { type: 'integer', minimum: 100, maximum: 1000, default: 200, description: 'Audio per chunk (and per result), in ms.' },
      partials: { type: 'boolean', default: true, description: 'Send the open utterance\'s hypothesis with every result.' },
      words: { type: 'boolean', default: false, description: 'Give each final utterance its words with start, end and confidence.' },
      silenceMs: {
        type: 'integer',
        minimum: 100,
        maximum: 5000,
        default: 500,
        description: 'Non-speech after which an utterance is complete and sent as final, in ms.',
      },
      sampleRate: {
        type: 'integer',
        minimum: 8000,
        maximum: 48000,
        default: 16000,
        description: 'url "client:" only: samples per second of the mono audio the client sends (resampled to 16 kHz).',
      },
      encoding: {
        enum: ['s16le', 'f32le'],
        default: 's16le',
        description: 'url "client:" only: each sample as signed 16-bit (2 bytes) or 32-bit float in -1..1 (4 bytes), little-endian.',
      },
    },
  },
  available: (settings) => pocketsphinxProblem(settings.speech),
  async prepare(ctx) {
    if (ctx.url === 'client:') return { audio: null, recognizer: ctx.settings.speech } satisfies TranscribeInput;
    const file = ctx.resolveFileUrl(ctx.url);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st) throw tandemError('BAD_URL', `${ctx.url}: no such file`);
    if (!st.isFile()) throw tandemError('BAD_URL', `${ctx.url} is not a regular file`);
    let layout;
    try {
      layout = readWavLayout(file);
    } catch (err) {
      if (err instanceof WavError) throw tandemError('BAD_URL', `${ctx.url} is not a usable WAV file: ${err.message}`);
      throw err;
    }
    let audio: AudioInput;
    if (layout && isRecognizerPcm(layout.format, SAMPLE_RATE_HZ)) {
      audio = { kind: 'pcm', file, offset: layout.dataOffset, bytes: layout.dataBytes };
    } else {
      await soxReads(file, ctx.url);
      audio = { kind: 'sox', file };
    }
    return { audio, recognizer: ctx.settings.speech } satisfies TranscribeInput;
  },
  producer: {
    shape: 'loop',
    // Async so that sox's output is read on this thread's event loop between chunks.
    async run(ctx) {
      const input = ctx.input as TranscribeInput;
      const chunkBytes = (ctx.options.chunkMs as number) * BYTES_PER_MS;
      const realtime = ctx.options.pace === 'realtime';
      const source = openAudio(input.audio!);
      try {
        const began = performance.now();
        let audioMs = 0;
        for (;;) {
          if (ctx.stopRequested) return;
          const pcm = await source.read(chunkBytes);
          if (!pcm) break;
          audioMs += pcm.length / BYTES_PER_MS;
          // A live source has a chunk only once its last sample was spoken.
          if (realtime && !ctx.sleep(began + audioMs - performance.now())) return;
          ctx.write(pcm);
        }
        // The end of the audio: the consumer completes the utterance still open.
        ctx.write(new Uint8Array(0));
      } finally {
        await source.close();
      }
    },
  },
  consumer: speechConsumer(
    (ctx) =>
      new PocketsphinxRecognizer((ctx.input as TranscribeInput).recognizer, {
        silenceMs: ctx.options.silenceMs as number,
        words: ctx.options.words === true,
      }),
    (ctx) => ((ctx.input as TranscribeInput).audio === null ? new ClientAudioDecoder(ctx.options.sampleRate as number, ctx.options.encoding as ClientEncoding) : null),
  ),
});
