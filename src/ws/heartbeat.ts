import type WebSocket from 'ws';

/**
 * Finds dead peers: every `intervalMs` each connection is pinged; one that has not answered the
 * previous ping is terminated (its close handler then ends its session). One timer for all
 * connections, not one per connection. A socket whose reading is paused for backpressure is not pinged.
 * @returns a function that stops the heartbeat.
 */
export function startHeartbeat(clients: Set<WebSocket>, intervalMs: number): () => void {
  if (intervalMs <= 0) return () => {};
  const alive = new WeakSet<WebSocket>();
  const watched = new WeakSet<WebSocket>();
  const timer = setInterval(() => {
    for (const ws of clients) {
      if (!watched.has(ws)) {
        watched.add(ws);
        alive.add(ws);
        ws.on('pong', () => alive.add(ws));
      }
      // A socket the server stopped reading (a client-fed session's spool is full: client-producer.ts)
      // cannot deliver its pong; it is known to be there, and it is read again once there is room.
      if (isPausedByUs(ws)) {
        alive.add(ws);
        continue;
      }
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function isPausedByUs(ws: WebSocket): boolean {
  return (ws as unknown as { _socket?: { isPaused(): boolean } })._socket?.isPaused() ?? false;
}
