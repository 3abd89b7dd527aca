import type WebSocket from 'ws';

/**
 * Finds dead peers: every `intervalMs` each connection is pinged; one that has not answered the
 * previous ping is terminated (its close handler then ends its session). One timer for all
 * connections, not one per connection.
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
