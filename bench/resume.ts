/**
 * The resume scenario: a fast session whose link stalls, then dies without a close frame, and
 * comes back on a new connection with RESUME (README "Resume").
 *
 * A real stall on loopback without root: the client stops reading its TCP socket, so the
 * service's send buffer fills as a congested link's would; then the socket is destroyed, so the
 * service sees the connection end with no close frame (1006) and keeps the session for RESUME.
 * After a pause the client connects again and asks for everything after the last seq it holds.
 * One SeqCheck follows the stream across both connections: every seq exactly once, in order.
 */
import type net from 'node:net';
import WebSocket from 'ws';
import { startFreshChild, type BenchChild } from './child.js';
import { SeqCheck } from './seq-check.js';

export interface ResumeSpec {
  key: string;
  name: string;
  /** START frame fields besides `command`. */
  start: Record<string, unknown>;
  /** Results flow normally this long before the stall, s. */
  warmupSeconds: number;
  /** The client stops reading this long before the socket dies, s. */
  stallSeconds: number;
  /** Time between the drop and the new connection, s. */
  downSeconds: number;
  /** Results are received on the new connection this long before STOP, s. */
  afterSeconds: number;
  env: Record<string, string>;
  execArgv: string[];
  dataRoot: string;
}

export interface ResumeResult {
  key: string;
  name: string;
  /** `resumed`, or the error code the service answered RESUME with, or `no answer`. */
  answer: string;
  /** The service's message with a refusal (e.g. how far back RESUME_GAP's window reaches). */
  message: string | null;
  /** Results received on the first connection (including what was buffered when it died). */
  resultsBeforeDrop: number;
  /** The `after` sent with RESUME: the last seq up to which nothing was missing. */
  resumedAfter: number;
  /** Results received on the new connection. */
  resultsAfterDrop: number;
  gaps: number;
  duplicates: number;
  reorders: number;
  /** RESUME sent → first result on the new connection, ms (null: none came). */
  firstResultMs: number | null;
  /** Results/s on the new connection (the replay, then live). */
  resultsPerSecondAfter: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Bound on any single wait for the service (open, started, resumed, close), ms. */
const ANSWER_TIMEOUT_MS = 10_000;

interface Frame {
  type: string;
  seq?: number;
  session?: string;
  resume?: string;
  code?: string;
  message?: string;
}

/** Waits for `ws`'s first frame that `pick` accepts (or its close, or the timeout: null). */
function nextFrame(ws: WebSocket, pick: (f: Frame) => boolean): Promise<Frame | null> {
  return new Promise((resolve) => {
    const done = (f: Frame | null) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      resolve(f);
    };
    const onMessage = (data: WebSocket.Data) => {
      const f = JSON.parse(String(data)) as Frame;
      if (pick(f)) done(f);
    };
    const onClose = () => done(null);
    const timer = setTimeout(() => done(null), ANSWER_TIMEOUT_MS);
    ws.on('message', onMessage);
    ws.once('close', onClose);
  });
}

/** Resolves when `ws` is closed (at once if it already is), or after the timeout. */
function closed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ANSWER_TIMEOUT_MS);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function connect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    // Before open: the connection failed. After: a dying link's errors end in 'close', which is
    // what the scenario waits for; without a listener they would end the bench instead.
    ws.on('error', reject);
  });
}

export async function runResume(spec: ResumeSpec, log: (line: string) => void): Promise<ResumeResult> {
  let child: BenchChild | undefined;
  const sockets: WebSocket[] = [];
  try {
    child = await startFreshChild('tandem', { ...spec, sessions: 1 });
    const url = child.wsUrl('/ws');
    const seqs = new SeqCheck();
    let resultsBeforeDrop = 0;
    let resultsAfterDrop = 0;
    let firstResultAt = 0;

    // ---- the first connection: results flow, then the link stalls and dies ----
    const first = await connect(url);
    sockets.push(first);
    first.on('message', (data) => {
      const f = JSON.parse(String(data)) as Frame;
      if (f.type === 'transcript') {
        seqs.receive(f.seq!);
        resultsBeforeDrop++;
      }
    });
    const startedFrame = nextFrame(first, (f) => f.type === 'started' || f.type === 'error');
    first.send(JSON.stringify({ command: 'START', ...spec.start }));
    const started = await startedFrame;
    if (started?.type !== 'started') throw new Error(`START was answered with ${started ? `${started.code}: ${started.message}` : 'nothing'}`);
    await sleep(spec.warmupSeconds * 1000);
    // ws keeps its socket private; pausing it is the only way to stop reading without a proxy.
    const socket = (first as unknown as { _socket: net.Socket })._socket;
    socket.pause();
    log(`  ${spec.name}: link stalled after seq ${seqs.highest}`);
    await sleep(spec.stallSeconds * 1000);
    socket.destroy(); // no close frame: the service sees 1006 and keeps the session for RESUME
    await closed(first);
    log(`  ${spec.name}: link dropped; ${resultsBeforeDrop} results received before it (the last buffered ones included)`);
    await sleep(spec.downSeconds * 1000);

    // ---- the new connection: RESUME after the last seq held ----
    const second = await connect(url);
    sockets.push(second);
    const resumedAfter = seqs.contiguous;
    second.on('message', (data) => {
      const f = JSON.parse(String(data)) as Frame;
      if (f.type !== 'transcript') return;
      if (resultsAfterDrop === 0) firstResultAt = performance.now();
      seqs.receive(f.seq!);
      resultsAfterDrop++;
    });
    const answerFrame = nextFrame(second, (f) => f.type === 'resumed' || f.type === 'error');
    const resumedAt = performance.now();
    second.send(JSON.stringify({ command: 'RESUME', session: started.session, resume: started.resume, after: resumedAfter }));
    const answer = await answerFrame;
    const answerName = answer === null ? 'no answer' : answer.type === 'resumed' ? 'resumed' : (answer.code ?? 'error');
    log(`  ${spec.name}: RESUME after ${resumedAfter} → ${answerName}${answer?.message ? `: ${answer.message}` : ''}`);
    let afterWindowMs = 0;
    let resultsInWindow = 0;
    if (answer?.type === 'resumed') {
      await sleep(spec.afterSeconds * 1000);
      afterWindowMs = performance.now() - resumedAt;
      resultsInWindow = resultsAfterDrop;
      const gone = closed(second);
      second.send('{"command":"STOP"}');
      await gone;
    }
    return {
      key: spec.key,
      name: spec.name,
      answer: answerName,
      message: answer?.type === 'error' ? (answer.message ?? null) : null,
      resultsBeforeDrop,
      resumedAfter,
      resultsAfterDrop,
      gaps: seqs.gaps,
      duplicates: seqs.duplicates,
      reorders: seqs.reorders,
      firstResultMs: firstResultAt > 0 ? firstResultAt - resumedAt : null,
      resultsPerSecondAfter: afterWindowMs > 0 ? (resultsInWindow * 1000) / afterWindowMs : 0,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await child?.close();
  }
}
