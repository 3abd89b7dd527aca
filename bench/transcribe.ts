/**
 * The transcribe scenario (issue 11, "Accuracy and speed"): the real recognizer on speech made at
 * bench time (speech-audio.ts), each question on a fresh tandem child:
 *   fast      one session at pace "fast": START → `stopped` (completed), over the audio's length
 *   floor     pocketsphinx_continuous on the same file, no service (pocketsphinx-floor.ts)
 *   realtime  one session at the audio's pace, `chunkMs` 100: chunk written → result sent, and
 *             how long after its last word each final arrives
 *   four      4 real-time sessions for `fourSeconds` after a warm-up: consumer lag (chunks
 *             written − consumed), and the start-up's apart
 *   churn     START and STOP in the middle of utterances (transcribe-churn.ts)
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { startFreshChild, type BenchChild } from './child.js';
import { measurePocketsphinxFloor, type PocketsphinxFloor } from './pocketsphinx-floor.js';
import { sampleProcess, threadCpuMs } from './proc.js';
import { makeBenchAudio, type BenchAudio } from './speech-audio.js';
import { inspect, SpeechSession, type Transcript } from './speech-session.js';
import { runChurn, type ChurnResult } from './transcribe-churn.js';

export interface TranscribeSpec {
  key: string;
  name: string;
  /** Chunk length of the real-time sessions (realtime, four), ms. */
  chunkMs: number;
  /** Concurrent real-time sessions of `four`, and how long they run, s. */
  fourSessions: number;
  fourSeconds: number;
  /**
   * Between the STARTs of `four`, ms. The four sessions play the same recording, so started
   * together every utterance of the four ends in the same 100 ms and four final passes
   * (ps_end_utt, ~100–200 ms of CPU each) queue on two cores: a worst case four independent live
   * sources do not meet. 0 measures that case.
   */
  fourStaggerMs: number;
  /** START/STOP rounds of `churn`. */
  churnRounds: number;
  env: Record<string, string>;
  execArgv: string[];
  dataRoot: string;
}

export interface FastResult {
  audioSeconds: number;
  chunkMs: number;
  /** START sent → `stopped` (completed) received, s: model load, every chunk, the flush. */
  wallSeconds: number;
  /** START sent → first result, ms: the model load, plus one chunk decoded. */
  firstResultMs: number;
  /** First result → last result, over the audio after the first chunk: decoding alone. */
  ratioWithoutLoad: number;
  /** Server process CPU (all threads) over the session, s. */
  serverCpuSeconds: number;
  /** CPU of the session's busiest thread over it, s: the consumer's, which holds the decoder. */
  decoderThreadCpuSeconds: number | null;
  finals: number;
  words: number;
}

export interface Spread {
  p50: number;
  p95: number;
  max: number;
}

export interface RealtimeResult {
  audioSeconds: number;
  chunkMs: number;
  results: number;
  /** Chunk written → result sent, the service's own figure (GET /api/sessions/{id} `latencyMs`). */
  serverLatencyMs: { p50: number | null; p95: number | null; max: number | null; samples: number };
  /** Chunk written → result received by this client, over every result. */
  clientLatencyMs: Spread | null;
  /** The same over the results that carry a final (ps_end_utt's last search pass ran for them). */
  clientLatencyWithFinalMs: Spread | null;
  /** Final received − (the instant its audio began + the final's `end`), ms, over every final. */
  finalAfterWordEndMs: Spread | null;
  finals: number;
}

export interface FourResult {
  /** Between their STARTs, ms. */
  staggerMs: number;
  sessions: number;
  seconds: number;
  chunkMs: number;
  /** Lag samples taken (every LAG_SAMPLE_MS, each session). */
  samples: number;
  /** Chunks written − chunks consumed, over every sample of the window. */
  lag: Spread | null;
  /** The same before the window: from the STARTs to FOUR_WARMUP_SECONDS after every first result. */
  startupLagMax: number | null;
  /** The slowest session's START → first result, ms (its model load, mostly). */
  firstResultMsMax: number;
  results: number;
  /** The worst session's chunk written → result sent p95, ms (inspect, its recent results). */
  latencyP95Ms: number | null;
}

export interface TranscribeResult {
  key: string;
  name: string;
  talkSeconds: number;
  fast: FastResult | null;
  /** pocketsphinx_continuous on the fast session's file, just after it. */
  floor: PocketsphinxFloor | null;
  realtime: RealtimeResult | null;
  four: FourResult | null;
  churn: ChurnResult | null;
  /** Parts that failed to run, with why. */
  failures: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LAG_SAMPLE_MS = 250;
/** After every session of `four` has had its first result, before the window, s. */
export const FOUR_WARMUP_SECONDS = 5;

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), max: s[s.length - 1]! };
}

const fileUrl = (file: string) => pathToFileURL(file).href;
const words = (ts: Transcript[]) => ts.flatMap((t) => t.final).reduce((n, u) => n + u.text.split(' ').length, 0);

async function withChild<T>(
  spec: TranscribeSpec,
  audio: BenchAudio,
  sessions: number,
  env: Record<string, string>,
  body: (child: BenchChild) => Promise<T>,
  execArgv: string[] = [],
): Promise<T> {
  // FILE_ROOT is the audio's folder: START names the files by file:// url.
  const child = await startFreshChild('tandem', { ...spec, sessions, env: { FILE_ROOT: audio.dir, ...spec.env, ...env }, execArgv: [...spec.execArgv, ...execArgv] });
  try {
    return await body(child);
  } finally {
    await child.close();
  }
}

async function runFast(child: BenchChild, audio: BenchAudio): Promise<FastResult> {
  const chunkMs = 200; // the option's default
  const cpuBefore = sampleProcess(child.pid)!.cpuMs;
  const threadsBefore = threadCpuMs(child.pid);
  const s = await SpeechSession.start(child.wsUrl('/live-transcription'), { url: fileUrl(audio.longWav), options: { pace: 'fast', chunkMs } });
  try {
    await s.until(() => s.stoppedAt > 0, '`stopped`', 60_000 + audio.longSeconds * 3000);
    if (s.stopReason !== 'completed') throw new Error(`the fast session ended ${s.stopReason}: ${s.errors.join('; ')}`);
    const cpuAfter = sampleProcess(child.pid)!.cpuMs;
    // Read at once: the consumer's loop thread lingers idle for up to a second after the session.
    const threadDeltas = [...threadCpuMs(child.pid)].map(([tid, ms]) => ms - (threadsBefore.get(tid) ?? 0));
    const ts = s.transcripts;
    const decodedSeconds = audio.longSeconds - chunkMs / 1000;
    return {
      audioSeconds: audio.longSeconds,
      chunkMs,
      wallSeconds: (s.stoppedAt - s.startSentAt) / 1000,
      firstResultMs: ts[0]!.receivedAt - s.startSentAt,
      ratioWithoutLoad: (ts[ts.length - 1]!.receivedAt - ts[0]!.receivedAt) / 1000 / decodedSeconds,
      serverCpuSeconds: (cpuAfter - cpuBefore) / 1000,
      decoderThreadCpuSeconds: threadDeltas.length > 0 ? Math.max(...threadDeltas) / 1000 : null,
      finals: ts.reduce((n, t) => n + t.final.length, 0),
      words: words(ts),
    };
  } finally {
    s.terminate();
  }
}

async function runRealtime(child: BenchChild, audio: BenchAudio, chunkMs: number): Promise<RealtimeResult> {
  const s = await SpeechSession.start(child.wsUrl('/live-transcription'), { url: fileUrl(audio.talkWav), options: { pace: 'realtime', chunkMs } });
  try {
    await s.until(() => s.stoppedAt > 0, '`stopped`', 60_000 + audio.talkSeconds * 2000);
    if (s.stopReason !== 'completed') throw new Error(`the real-time session ended ${s.stopReason}: ${s.errors.join('; ')}`);
    const view = await inspect(child.port, s.id);
    const ts = s.transcripts;
    // Chunk k (k·chunkMs of audio) is written once its last sample "was spoken", at
    // began + k·chunkMs; the earliest such instant, less any write delay, is when the audio
    // began. The last two chunks are left out: a short tail chunk, and the empty end-of-audio one.
    const began = Math.min(...ts.slice(0, -2).map((t) => t.producedAt - t.seq * chunkMs));
    const finalDelays = ts.flatMap((t) => t.final.map((u) => t.receivedAt - (began + u.end * 1000)));
    return {
      audioSeconds: audio.talkSeconds,
      chunkMs,
      results: ts.length,
      serverLatencyMs: { p50: view.latencyMs.p50, p95: view.latencyMs.p95, max: view.latencyMs.max, samples: view.latencyMs.samples },
      clientLatencyMs: spread(ts.map((t) => t.receivedAt - t.producedAt)),
      clientLatencyWithFinalMs: spread(ts.filter((t) => t.final.length > 0).map((t) => t.receivedAt - t.producedAt)),
      finalAfterWordEndMs: spread(finalDelays),
      finals: finalDelays.length,
    };
  } finally {
    s.terminate();
  }
}

async function runFour(child: BenchChild, audio: BenchAudio, spec: TranscribeSpec): Promise<FourResult> {
  const sessions: SpeechSession[] = [];
  const startupLags: number[] = [];
  const lags: number[] = [];
  let into: number[] = startupLags;
  let sampling = true;
  let sampler: Promise<void> | undefined;
  try {
    for (let i = 0; i < spec.fourSessions; i++) {
      if (i > 0) await sleep(spec.fourStaggerMs);
      sessions.push(await SpeechSession.start(child.wsUrl('/live-transcription'), { url: fileUrl(audio.longWav), options: { pace: 'realtime', chunkMs: spec.chunkMs } }));
    }
    sampler = (async () => {
      while (sampling) {
        const views = await Promise.all(sessions.map((s) => inspect(child.port, s.id)));
        for (const v of views) into.push(v.counters.produced - v.counters.consumed);
        await sleep(LAG_SAMPLE_MS);
      }
    })();
    // Start-up: each consumer loads its model while its producer already writes real-time
    // chunks, then catches up. The window starts once every session has had a result and
    // FOUR_WARMUP_SECONDS more have passed; the start-up's lag is reported beside it.
    await Promise.all(sessions.map((s) => s.until(() => s.transcripts.length > 0, 'a first result', 60_000)));
    await sleep(FOUR_WARMUP_SECONDS * 1000);
    into = lags;
    await sleep(spec.fourSeconds * 1000);
    sampling = false;
    await sampler;
    const ended = sessions.find((s) => s.stoppedAt > 0);
    if (ended) throw new Error(`a session ended (${ended.stopReason}) before the window did: ${ended.errors.join('; ')}`);
    const views = await Promise.all(sessions.map((s) => inspect(child.port, s.id)));
    const p95s = views.map((v) => v.latencyMs.p95).filter((v): v is number => v !== null);
    await Promise.all(sessions.map((s) => s.stop()));
    return {
      sessions: sessions.length,
      seconds: spec.fourSeconds,
      chunkMs: spec.chunkMs,
      staggerMs: spec.fourStaggerMs,
      samples: lags.length,
      lag: spread(lags),
      startupLagMax: startupLags.length > 0 ? Math.max(...startupLags) : null,
      firstResultMsMax: Math.max(...sessions.map((s) => s.transcripts[0]!.receivedAt - s.startSentAt)),
      results: sessions.reduce((n, s) => n + s.transcripts.length, 0),
      latencyP95Ms: p95s.length > 0 ? Math.max(...p95s) : null,
    };
  } finally {
    sampling = false;
    await sampler?.catch(() => {});
    for (const s of sessions) s.terminate();
  }
}

export async function runTranscribe(spec: TranscribeSpec, log: (line: string) => void): Promise<TranscribeResult> {
  // The four sessions read the long file for their whole window, with room to spare.
  const audio = await makeBenchAudio(spec.dataRoot, spec.fourSeconds + FOUR_WARMUP_SECONDS + 20);
  const result: TranscribeResult = { key: spec.key, name: spec.name, talkSeconds: audio.talkSeconds, fast: null, floor: null, realtime: null, four: null, churn: null, failures: [] };
  const part = async <T>(name: string, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      result.failures.push(`${name}: ${why}`);
      log(`  ${spec.name} ${name} failed: ${why}`);
      return null;
    }
  };
  try {
    log(`  ${spec.name}: flite speech, ${audio.talkSeconds.toFixed(1)} s talk, ${audio.longSeconds.toFixed(1)} s long`);
    result.fast = await part('fast', () => withChild(spec, audio, 1, {}, (c) => runFast(c, audio)));
    if (result.fast) log(`  ${spec.name} fast: ${result.fast.audioSeconds.toFixed(1)} s of audio in ${result.fast.wallSeconds.toFixed(1)} s`);
    result.floor = await part('floor', () => measurePocketsphinxFloor(audio.longWav, audio.longSeconds));
    if (result.floor) log(`  ${spec.name} floor: pocketsphinx_continuous took ${result.floor.wallSeconds.toFixed(1)} s`);
    result.realtime = await part('realtime', () => withChild(spec, audio, 1, {}, (c) => runRealtime(c, audio, spec.chunkMs)));
    if (result.realtime) log(`  ${spec.name} realtime: ${result.realtime.results} results, ${result.realtime.finals} finals`);
    result.four = await part('four', () => withChild(spec, audio, spec.fourSessions, {}, (c) => runFour(c, audio, spec)));
    if (result.four) log(`  ${spec.name} four: ${result.four.samples} lag samples, lag max ${result.four.lag?.max}`);
    // Pool threads leave after 200 ms idle, so "no thread left" is seen within the run;
    // --expose-gc lets the RSS be compared after a memory-reducing GC (transcribe-churn.ts).
    result.churn = await part('churn', () =>
      withChild(spec, audio, 4, { POOL_IDLE_TIMEOUT_MS: '200' }, (c) => runChurn(c, audio, spec.churnRounds), ['--expose-gc']),
    );
    return result;
  } finally {
    fs.rmSync(audio.dir, { recursive: true, force: true });
  }
}
