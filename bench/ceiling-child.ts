/**
 * The transport ceiling: a bare `ws` server speaking the same protocol with no threads and no
 * disk. On START it pushes `transcript` frames built exactly as tandem builds them, as fast as
 * the socket drains; on STOP it sends `stopped` and closes.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { nowMs } from '../src/pool/flags.js';
import { startedMessage, stoppedMessage, transcriptMessage } from '../src/ws/protocol.js';
import { serveChildStats } from './child-stats.js';

/** Stop queuing frames on a socket above this many unsent bytes. */
const HIGH_WATER_BYTES = 256 * 1024;
/** Frames per socket per turn of the event loop before yielding to the others. */
const BURST = 64;

const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, path: '/ws' });
await new Promise<void>((resolve) => wss.once('listening', resolve));

wss.on('connection', (ws) => {
  const session = randomUUID();
  let seq = 0;
  let running = false;
  const pump = () => {
    if (!running || ws.readyState !== ws.OPEN) return;
    for (let i = 0; i < BURST && ws.bufferedAmount < HIGH_WATER_BYTES; i++) {
      seq++;
      const data = `Data from producer #${seq} at ${(Date.now() / 1000).toFixed(3)}`;
      ws.send(transcriptMessage(session, seq, JSON.stringify(data), nowMs()));
    }
    setImmediate(pump);
  };
  ws.on('message', (raw) => {
    const cmd = JSON.parse(String(raw)) as { command: string };
    if (cmd.command === 'START' && !running) {
      running = true;
      ws.send(startedMessage(session, 'ceiling', 'ceiling-has-no-resume-secret'));
      setImmediate(pump);
    } else if (cmd.command === 'STOP') {
      running = false;
      ws.send(stoppedMessage(session, 'client', seq));
      ws.close(1000);
    }
  });
  ws.on('close', () => {
    running = false;
  });
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
