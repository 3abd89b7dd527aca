/**
 * `ws@7` ends a closing connection's socket and its frame parser (Receiver) again after they have
 * finished (`socketOnEnd`, `socketOnClose`): Node answers each such `end()` by building an
 * ERR_STREAM_ALREADY_FINISHED error, with its stack, that nobody sees. Three a closed connection,
 * about 24 µs of the main thread's CPU per STOP in a storm of them (docs/PERFORMANCE.md, "The
 * storm's repeated ends"). A second `end()` with no callback does nothing else, so it is
 * skipped here; one with a callback, or on a stream not yet finished, goes through as before.
 */
import type { Writable } from 'node:stream';
import type WebSocket from 'ws';

export function skipRepeatedEnds(ws: WebSocket): void {
  const internals = ws as unknown as { _socket?: Writable; _receiver?: Writable };
  for (const stream of [internals._socket, internals._receiver]) if (stream) skipEndWhenFinished(stream);
}

function skipEndWhenFinished(stream: Writable): void {
  const end = stream.end as (this: Writable, ...args: unknown[]) => Writable;
  stream.end = function (this: Writable, ...args: unknown[]): Writable {
    if (args.length === 0 && this.writableFinished) return this;
    return end.apply(this, args);
  } as Writable['end'];
}
