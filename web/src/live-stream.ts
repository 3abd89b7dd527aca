import { authHeaders, refusal } from './api.js';
import type { LiveHello, LiveSnapshot } from './types.js';

export interface LiveHandlers {
  hello(hello: LiveHello): void;
  snapshot(snapshot: LiveSnapshot): void;
}

/**
 * Reads GET /api/live (server-sent events) with fetch(), not EventSource: EventSource cannot
 * send an Authorization header, and the token must not go into the URL. Resolves when the
 * server ends the stream; rejects with an ApiError when it refuses it.
 */
export async function readLiveStream(handlers: LiveHandlers, signal: AbortSignal): Promise<void> {
  const res = await fetch('/api/live', { headers: authHeaders({ Accept: 'text/event-stream' }), cache: 'no-store', signal });
  if (!res.ok || !res.body) throw await refusal(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      dispatch(buffer.slice(0, end), handlers);
      buffer = buffer.slice(end + 2);
    }
  }
}

/** One event: `event:` and `data:` lines; lines starting with `:` are heartbeats. */
function dispatch(block: string, handlers: LiveHandlers): void {
  let name = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  const payload: unknown = JSON.parse(data.join('\n'));
  if (name === 'hello') handlers.hello(payload as LiveHello);
  else if (name === 'snapshot') handlers.snapshot(payload as LiveSnapshot);
}
