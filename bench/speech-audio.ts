/**
 * The transcribe scenario's audio, made at bench time (nothing is committed): sentences spoken by
 * `flite -voice kal16`, brought to 16 kHz mono 16-bit by sox, joined with pauses long enough to
 * end an utterance (so finals arrive all along, not only at the end), and a FLAC copy that
 * the service must convert through sox.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  'We met at the station early in the morning and walked to the market.',
  'The weather was cold but the sun was bright.',
  'She bought apples, bread and a small jar of honey.',
  'Then we took the train back to the city.',
  'Please call me tomorrow after the meeting ends.',
  'The children played in the garden until it was dark.',
];
/** Silence between sentences: above the default silenceMs (500), so each sentence ends an utterance. */
const PAUSE_SECONDS = 0.8;
/** After the last sentence, so its final comes from the pause, not from the end of the audio. */
const TAIL_SECONDS = 1;

export interface BenchAudio {
  dir: string;
  /** The sentences once (about 25 s), as a 16 kHz WAV the service reads directly. */
  talkWav: string;
  /** The same audio as FLAC: the service converts it through sox. */
  talkFlac: string;
  talkSeconds: number;
  /** The talk repeated to at least the length asked for. */
  longWav: string;
  longSeconds: number;
}

async function seconds(file: string): Promise<number> {
  return Number((await run('soxi', ['-D', file])).stdout.trim());
}

/**
 * Makes the audio in a new folder under `root` (the caller removes `dir`).
 * @param minLongSeconds the long file's minimum length, s.
 */
export async function makeBenchAudio(root: string, minLongSeconds: number): Promise<BenchAudio> {
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'speech-'));
  const pcm = ['-r', '16000', '-c', '1', '-b', '16'];
  const parts: string[] = [];
  const pause = path.join(dir, 'pause.wav');
  const tail = path.join(dir, 'tail.wav');
  await run('sox', ['-n', ...pcm, pause, 'trim', '0', String(PAUSE_SECONDS)]);
  await run('sox', ['-n', ...pcm, tail, 'trim', '0', String(TAIL_SECONDS)]);
  for (const [i, text] of SENTENCES.entries()) {
    const spoken = path.join(dir, `s${i}.flite.wav`);
    const wav = path.join(dir, `s${i}.wav`);
    await run('flite', ['-voice', 'kal16', '-t', text, '-o', spoken]);
    await run('sox', [spoken, ...pcm, wav]);
    if (i > 0) parts.push(pause);
    parts.push(wav);
  }
  parts.push(tail);
  const talkWav = path.join(dir, 'talk.wav');
  await run('sox', [...parts, talkWav]);
  const talkFlac = path.join(dir, 'talk.flac');
  await run('sox', [talkWav, talkFlac]);
  const talkSeconds = await seconds(talkWav);
  const longWav = path.join(dir, 'long.wav');
  const repeats = Math.max(0, Math.ceil(minLongSeconds / talkSeconds) - 1);
  await run('sox', [talkWav, longWav, 'repeat', String(repeats)]);
  return { dir, talkWav, talkFlac, talkSeconds, longWav, longSeconds: await seconds(longWav) };
}
