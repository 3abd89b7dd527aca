import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { wavHeader } from '../../src/pipelines/speech/wav.js';
import { TestClient, type ServerMessage } from './client.js';
import type { TestServer } from './server.js';

const run = promisify(execFile);

const specFile = fileURLToPath(new URL('../../../asyncapi.yaml', import.meta.url));
const spec = parseYaml(fs.readFileSync(specFile, 'utf8')) as { components: { schemas: Record<string, object> } };
/** asyncapi.yaml's TranscriptionResult: every `data` of a transcribe session must match it. */
const validateResult = new Ajv({ strict: false, allErrors: true }).compile(spec.components.schemas.TranscriptionResult!);

/** pocketsphinx-testdata: read from the installed Debian package at test time. */
export const TESTDATA = '/usr/share/pocketsphinx/test/data';
export const GOFORWARD_RAW = path.join(TESTDATA, 'goforward.raw');
export const LIBRIVOX = path.join(TESTDATA, 'librivox');

export interface Utterance {
  text: string;
  start: number;
  end: number;
  words?: { word: string; start: number; end: number; conf: number }[];
}

export interface Transcription {
  partials: (string | null)[];
  finals: Utterance[];
  text: string;
  messages: ServerMessage[];
  transcripts: ServerMessage[];
  /** Epoch ms just before START was sent. */
  sentAt: number;
}

/** Wraps raw s16le 16 kHz mono audio into a WAV file at `dest`. */
export function wavFromRaw(raw: string, dest: string): string {
  const pcm = fs.readFileSync(raw);
  fs.writeFileSync(dest, Buffer.concat([wavHeader(pcm.length, 16_000), pcm]));
  return dest;
}

/** Speech synthesised now with flite's kal16 voice, resampled by sox to 16 kHz mono. */
export async function synthesize(text: string, dir: string, name: string): Promise<string> {
  const raw = path.join(dir, `${name}.flite.wav`);
  const out = path.join(dir, `${name}.wav`);
  await run('flite', ['-voice', 'kal16', '-t', text, '-o', raw]);
  await run('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', out]);
  fs.rmSync(raw);
  return out;
}

/** Joins WAV files into one, with `pauseSeconds` of silence between them (sox). */
export async function joinWithPauses(files: string[], pauseSeconds: number, dest: string): Promise<string> {
  const silence = `${dest}.silence.wav`;
  await run('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', silence, 'trim', '0', String(pauseSeconds)]);
  await run('sox', [...files.flatMap((f, i) => (i === 0 ? [f] : [silence, f])), dest]);
  fs.rmSync(silence);
  return dest;
}

/** Words, lower case, without punctuation other than apostrophes. */
export function words(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
}

/** Word error rate of `hypothesis` against `reference`: (substitutions + deletions + insertions) / reference words. */
export function wordErrorRate(reference: string, hypothesis: string): { errors: number; words: number } {
  const r = words(reference);
  const h = words(hypothesis);
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return { errors: prev[h.length]!, words: r.length };
}

/** The LibriVox clips and what is said in each (the package's `transcription` file). */
export function librivoxClips(): { file: string; reference: string }[] {
  const lines = fs.readFileSync(path.join(LIBRIVOX, 'transcription'), 'utf8').split('\n').filter(Boolean);
  return lines.map((line) => {
    const m = /^(.*)\((\S+)\)\s*$/.exec(line)!;
    return { file: path.join(LIBRIVOX, `${m[2]}.wav`), reference: m[1]!.replace(/<\/?s>/g, '').trim() };
  });
}

/** What Debian's pocketsphinx_continuous hears in `file` (same library, same model). */
export async function continuousHypothesis(file: string): Promise<string> {
  const { stdout } = await run('pocketsphinx_continuous', ['-infile', file, '-logfn', '/dev/null'], { maxBuffer: 1 << 20 });
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
}

/** Runs `transcribe` (or another speech `pipeline`) on `file` (copied under FILE_ROOT if it is not) to its end; collects what came. */
export async function transcribe(server: TestServer, file: string, options: Record<string, unknown> = {}, pipeline = 'transcribe'): Promise<Transcription> {
  const inRoot = file.startsWith(server.fileRoot + path.sep) ? file : path.join(server.fileRoot, path.basename(file));
  if (inRoot !== file) fs.copyFileSync(file, inRoot);
  const client = await TestClient.open(server.wsUrl('/live-transcription'));
  const sentAt = performance.timeOrigin + performance.now();
  await client.start({ pipeline, url: pathToFileURL(inRoot).href, options: { pace: 'fast', ...options } });
  const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
  if (stopped.reason !== 'completed') throw new Error(`session ended ${stopped.reason}: ${JSON.stringify(client.messages.slice(-3))}`);
  if (client.invalid.length > 0) throw new Error(client.invalid.join('\n'));
  const transcripts = client.transcripts();
  for (const t of transcripts) {
    if (!validateResult(t.data)) throw new Error(`data does not match TranscriptionResult: ${JSON.stringify(validateResult.errors)} in ${JSON.stringify(t.data)}`);
  }
  const data = transcripts.map((t) => t.data as { partial: string | null; final: Utterance[] });
  const finals = data.flatMap((d) => d.final);
  return {
    partials: data.map((d) => d.partial),
    finals,
    text: finals.map((f) => f.text).join(' '),
    messages: client.messages,
    transcripts,
    sentAt,
  };
}

/** Sends `audio` as binary frames of `frameBytes` (the last may be shorter), from byte `from` on. */
export function sendFrames(client: TestClient, audio: Buffer, frameBytes: number, from = 0): void {
  for (let at = from; at < audio.length; at += frameBytes) client.ws.send(audio.subarray(at, at + frameBytes));
}

/** What a session of `transcribe` fed by the client's frames heard, once its data was checked against asyncapi.yaml. */
export function heard(client: TestClient): { finals: Utterance[]; text: string } {
  const transcripts = client.transcripts();
  for (const t of transcripts) {
    if (!validateResult(t.data)) throw new Error(`data does not match TranscriptionResult: ${JSON.stringify(validateResult.errors)} in ${JSON.stringify(t.data)}`);
  }
  const finals = transcripts.flatMap((t) => (t.data as { final: Utterance[] }).final);
  return { finals, text: finals.map((f) => f.text).join(' ') };
}

/**
 * Starts `transcribe` with url "client:", sends `audio` in frames of `frameBytes` as fast as
 * the socket takes them, then END; resolves once the session stopped.
 */
export async function transcribeFrames(server: TestServer, audio: Buffer, frameBytes: number, options: Record<string, unknown> = {}) {
  const client = await TestClient.open(server.wsUrl('/live-transcription'));
  try {
    await client.start({ pipeline: 'transcribe', url: 'client:', options });
    sendFrames(client, audio, frameBytes);
    client.send({ command: 'END' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
    const closeCode = await client.waitClose();
    if (client.invalid.length > 0) throw new Error(client.invalid.join('\n'));
    return { client, stopped, closeCode, ...heard(client) };
  } finally {
    client.terminate();
  }
}
