import type WebSocket from 'ws';

/**
 * The interval is cut into this many slices; a connection belongs to the slice it joined in and is
 * pinged when that slice comes round, once per interval. Pinging every connection in the same
 * turn held the main thread for hundreds of ms with 10,000 clients (and made them all answer at
 * once); sliced, each turn pings a fiftieth of them.
 */
const SLICES = 50;
/** Slices are never shorter than this, ms (a short test interval would otherwise tick every ms). */
const MIN_SLICE_MS = 10;

export interface Heartbeat {
  /** Starts pinging `ws` once an interval from now, with `ping` (by default `ws.ping()`). */
  watch(ws: WebSocket, ping?: () => void): void;
  /** Stops pinging anyone. */
  close(): void;
}

/**
 * Finds dead peers: each connection is pinged once every `intervalMs`; one that has not answered
 * the previous ping is terminated (its close handler then ends its session). One timer for all
 * connections, not one per connection. A socket whose reading is paused for backpressure is not pinged.
 * `intervalMs` 0 turns it off.
 */
export function startHeartbeat(intervalMs: number): Heartbeat {
  if (intervalMs <= 0) return { watch() {}, close() {} };
  const slices = Math.max(1, Math.min(SLICES, Math.floor(intervalMs / MIN_SLICE_MS)));
  // Each slice's sockets, with how each is pinged.
  const ring = Array.from({ length: slices }, () => new Map<WebSocket, () => void>());
  const alive = new WeakSet<WebSocket>();
  let cursor = 0;

  const tick = (): void => {
    const slice = ring[cursor]!;
    cursor = (cursor + 1) % slices;
    for (const [ws, ping] of slice) {
      // A socket the server stopped reading (a client-fed session's spool is full: client-producer.ts)
      // cannot deliver its pong; it is known to be there, and it is read again once there is room.
      if (isPausedByUs(ws)) {
        alive.add(ws);
        continue;
      }
      if (!alive.has(ws)) {
        slice.delete(ws);
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ping();
    }
  };
  const timer = setInterval(tick, intervalMs / slices);
  timer.unref();

  return {
    watch(ws, ping = () => ws.ping()) {
      // The slice that comes round last: its first ping is a whole interval away.
      const slice = ring[(cursor + slices - 1) % slices]!;
      slice.set(ws, ping);
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      ws.once('close', () => slice.delete(ws));
    },
    close() {
      clearInterval(timer);
      for (const s of ring) s.clear();
    },
  };
}

function isPausedByUs(ws: WebSocket): boolean {
  return (ws as unknown as { _socket?: { isPaused(): boolean } })._socket?.isPaused() ?? false;
}
