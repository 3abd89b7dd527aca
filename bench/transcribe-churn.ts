/**
 * Sessions started and stopped in the middle of utterances (issue 11: "20 STARTs and STOPs …
 * leave RSS within 10 MB of where it began, no decoder, thread or child process behind").
 *
 * Each round STARTs a real-time session, waits for a partial hypothesis (speech is being
 * decoded, no pause has ended it) and STOPs; rounds alternate a WAV read directly and a FLAC
 * that sox converts, so a sox child is running at the STOP. Four rounds at a time.
 * "Where it began" is measured after one warm-up round, once its threads have left: the
 * library mapped into the process and the model files in the page cache are not left behind
 * by a session. The cold figure (before any session) is reported beside it.
 * "No decoder behind": every session's summary says `forced: false`, i.e. the consumer loop
 * returned by itself and freed its decoder in `finally` (a forced stop would terminate the
 * thread with the decoder in it).
 */
import { pathToFileURL } from 'node:url';
import type { BenchChild } from './child.js';
import { childrenOf, sampleProcess } from './proc.js';
import type { BenchAudio } from './speech-audio.js';
import { inspect, SpeechSession } from './speech-session.js';

export interface ChurnResult {
  rounds: number;
  /** Rounds whose STOP came while sox was converting (the FLAC ones). */
  roundsWithSox: number;
  rssColdBytes: number;
  /** Before and after the rounds, each once the service is settled and its main isolate was collected (memory-reducing GC). */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** The same two samples taken just before that collection. */
  rssBeforeUncollectedBytes: number;
  rssAfterUncollectedBytes: number;
  /** Whether the collections ran (the child has --expose-gc); if not, both pairs are uncollected. */
  collected: boolean;
  threadsBefore: number;
  threadsAfter: number;
  /** Child processes of the service after the rounds (sox, or anything else). */
  childrenLeft: string[];
  /** Sessions whose stop had to terminate a thread. */
  forced: number;
  /** Sessions not ended after the rounds. */
  notEnded: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SETTLE_TIMEOUT_MS = 20_000;
const CONCURRENT_ROUNDS = 4;

/**
 * RSS of the settled service, as it is and after a memory-reducing GC of its main isolate. The
 * first alone swings by ±30 MB from one sample to the next with no session running: V8 grows the
 * young generation to 2 × 16 MB under load and shrinks it some seconds after (its memory reducer,
 * when it ran: `npm start`'s flags now turn it off, and the heap then keeps its size), so which
 * side of that a sample falls on, not what the sessions left, decided the difference.
 */
async function sampleSettled(child: BenchChild): Promise<{ uncollected: number; collected: number; didCollect: boolean }> {
  const uncollected = sampleProcess(child.pid)!.rssBytes;
  const didCollect = await child.collectGarbage();
  return { uncollected, collected: didCollect ? sampleProcess(child.pid)!.rssBytes : uncollected, didCollect };
}

/** Waits until no child is left and the threads are down to `threads`, bounded; then a quiet second. */
async function settle(pid: number, threads: number): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (childrenOf(pid).length === 0 && sampleProcess(pid)!.threads <= threads) break;
    await sleep(100);
  }
  await sleep(1000);
}

export async function runChurn(child: BenchChild, audio: BenchAudio, rounds: number): Promise<ChurnResult> {
  const pid = child.pid;
  const ids: string[] = [];
  let roundsWithSox = 0;
  const round = async (i: number) => {
    const flac = i % 2 === 1;
    const s = await SpeechSession.start(child.wsUrl('/live-transcription'), {
      url: pathToFileURL(flac ? audio.talkFlac : audio.talkWav).href,
      options: { pace: 'realtime', chunkMs: 100 },
    });
    ids.push(s.id);
    try {
      await s.until(() => s.transcripts.some((t) => t.partial !== null), 'a partial');
      if (flac && childrenOf(pid).some((c) => c.name === 'sox')) roundsWithSox++;
      await s.stop();
    } finally {
      s.terminate();
    }
  };

  await sleep(500);
  const cold = sampleProcess(pid)!;
  await round(1);
  await settle(pid, cold.threads);
  const before = sampleProcess(pid)!;
  const rssBefore = await sampleSettled(child);
  roundsWithSox = 0;
  ids.length = 0;
  for (let i = 0; i < rounds; i += CONCURRENT_ROUNDS) {
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_ROUNDS, rounds - i) }, (_, j) => round(i + j)));
  }
  await settle(pid, before.threads);
  const after = sampleProcess(pid)!;
  const rssAfter = await sampleSettled(child);
  const views = await Promise.all(ids.map((id) => inspect(child.port, id)));
  return {
    rounds,
    roundsWithSox,
    rssColdBytes: cold.rssBytes,
    rssBeforeBytes: rssBefore.collected,
    rssAfterBytes: rssAfter.collected,
    rssBeforeUncollectedBytes: rssBefore.uncollected,
    rssAfterUncollectedBytes: rssAfter.uncollected,
    collected: rssBefore.didCollect && rssAfter.didCollect,
    threadsBefore: before.threads,
    threadsAfter: after.threads,
    childrenLeft: childrenOf(pid).map((c) => `${c.name} ${c.pid} (${c.state})`),
    forced: views.filter((v) => v.summary?.forced).length,
    notEnded: views.filter((v) => v.summary === null).length,
  };
}
