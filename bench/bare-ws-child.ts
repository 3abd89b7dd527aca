/**
 * The transport alone: a bare `ws` server speaking the same protocol as tandem with no threads,
 * no disk and no session bookkeeping. The bench measures it with the same client as tandem, in
 * the same run, so each tandem figure can be read against what the transport itself does.
 *
 * On START it sends `transcript` frames shaped exactly as tandem's (README "The WebSocket
 * protocol"; the demo pipeline's text as `data`):
 * - `options.intervalMs` 0 (the ceiling): as fast as the socket drains;
 * - `options.intervalMs` > 0 (the crowd and stop-storm floors): one frame per interval, on a
 *   timer of its own per connection, as tandem's demo producer is asked to.
 * On STOP it sends `stopped` and closes with 1000.
 *
 * With BARE_WS_HANDOFF=2 (the `steady-handoff` floor) each timed frame is first made on a worker
 * thread, which appends its chunk and then its result to two files under DATA_DIR
 * (bench/handoff.ts): the cheapest shape of tandem's data path, to read tandem's CPU per result
 * against. BARE_WS_HANDOFF=1 appends the frame alone, once (the floor before 2026-12-03), and
 * BARE_WS_HANDOFF=0 nothing (the hop alone); BARE_WS_HANDOFF_TIMER=worker lets the worker keep
 * the schedule and tick, BARE_WS_HANDOFF_SEND=worker lets it write each frame into the socket
 * itself, and BARE_WS_HANDOFF_LOG=thread appends every connection's records to one log, a tick's
 * chunks in one write and its results in another (bench/handoff.ts).
 *
 * The frames are made here and in bench/handoff.ts rather than imported from src/ so the floor
 * does not move when the service's internals do; only the wire format, which the client checks, is
 * shared.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { serveChildStats } from './child-stats.js';
import { Handoff, transcriptFrame, type HandoffAppends, type HandoffFeed, type HandoffLog, type HandoffSend, type HandoffTimer } from './handoff.js';

/** Stop queuing frames on a socket above this many unsent bytes (the ceiling's pump). */
const HIGH_WATER_BYTES = 256 * 1024;
/** Frames per socket per turn of the event loop before yielding to the others. */
const BURST = 64;

/** BARE_WS_HANDOFF: records the hand-off appends per frame; unset, no hand-off. */
const HANDOFF_APPENDS: Record<string, HandoffAppends | undefined> = { '0': 0, '1': 1, '2': 2 };
/** The value `choices` gives the variable `name` (unset: its '' entry); an unknown one stops the child, naming what is allowed. */
function variant<T>(name: string, choices: Record<string, T | undefined>): T {
  const value = choices[process.env[name] ?? ''];
  if (value === undefined) throw new Error(`${name} is ${Object.keys(choices).filter(Boolean).join(' or ')}, got ${process.env[name]}`);
  return value;
}
/** BARE_WS_HANDOFF_TIMER: which thread keeps the hand-off's schedule (bench/handoff.ts); unset, the main thread. */
const handoffTimer = variant<HandoffTimer>('BARE_WS_HANDOFF_TIMER', { '': 'main', main: 'main', worker: 'worker' });
/** BARE_WS_HANDOFF_SEND: which thread writes a hand-off's frames to their sockets (bench/handoff.ts); unset, the main thread. */
const handoffSend = variant<HandoffSend>('BARE_WS_HANDOFF_SEND', { '': 'main', main: 'main', worker: 'worker' });
/** BARE_WS_HANDOFF_LOG: where the hand-off's records go (bench/handoff.ts); unset, each connection's own files. */
const handoffLog = variant<HandoffLog>('BARE_WS_HANDOFF_LOG', { '': 'connection', connection: 'connection', thread: 'thread', mapped: 'mapped' });
const handoffAppends = HANDOFF_APPENDS[process.env.BARE_WS_HANDOFF ?? ''];
const handoff = handoffAppends !== undefined ? new Handoff(process.env.DATA_DIR ?? 'data', handoffAppends, handoffTimer, handoffSend, handoffLog) : null;

const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, path: '/ws' });
await new Promise<void>((resolve) => wss.once('listening', resolve));

wss.on('connection', (ws) => {
  const session = randomUUID();
  let seq = 0;
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let fed: HandoffFeed | undefined;
  const end = () => {
    running = false;
    clearInterval(timer);
    // A socket target's frames were written by the worker: the feed knows the last one.
    seq = Math.max(seq, fed?.stop() ?? 0);
  };
  const pump = () => {
    if (!running || ws.readyState !== ws.OPEN) return;
    for (let i = 0; i < BURST && ws.bufferedAmount < HIGH_WATER_BYTES; i++) ws.send(transcriptFrame(session, ++seq));
    setImmediate(pump);
  };
  ws.on('message', (raw) => {
    const cmd = JSON.parse(String(raw)) as { command: string; options?: { intervalMs?: number } };
    if (cmd.command === 'START' && !running) {
      running = true;
      ws.send(JSON.stringify({ type: 'started', session, pipeline: 'bare-ws', resume: 'bare-ws-has-no-resume' }));
      const intervalMs = cmd.options?.intervalMs ?? 0;
      if (intervalMs > 0 && handoff) {
        // The worker's frames go straight into the socket, or back here to be sent. A START read
        // from a socket that has closed (ws reads what it buffered then) starts nothing.
        const socket = (ws as unknown as { _socket: Socket & { _handle: unknown } })._socket;
        if (handoffSend === 'worker' && (ws.readyState !== ws.OPEN || !socket._handle)) return;
        fed = handoff.feed(
          intervalMs,
          handoffSend === 'worker'
            ? { socket, session, isOpen: () => ws.readyState === ws.OPEN }
            : {
                send: (n, producedAt) => {
                  seq = n;
                  if (ws.readyState === ws.OPEN) ws.send(transcriptFrame(session, n, producedAt));
                },
              },
        );
      } else if (intervalMs > 0) timer = setInterval(() => ws.send(transcriptFrame(session, ++seq)), intervalMs);
      else setImmediate(pump);
    } else if (cmd.command === 'STOP') {
      end();
      ws.send(JSON.stringify({ type: 'stopped', session, reason: 'client', chunks: seq }));
      ws.close(1000);
    }
  });
  ws.on('close', end);
});

const { port } = wss.address() as { port: number };
serveChildStats(
  port,
  () => ({ sessions: wss.clients.size }),
  () =>
    new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    }),
);
