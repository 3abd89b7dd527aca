import type { Logger } from 'pino';
import type { LiveLimits } from '../config.js';
import { tandemError } from '../errors.js';
import type { components } from '../generated/openapi.js';

type Schemas = components['schemas'];

/**
 * What the hub needs of a viewer's connection: an http.ServerResponse is one. `writableLength`
 * is what was written and not yet taken by the network: a viewer that does not read lets it grow.
 */
export interface ViewerStream {
  readonly writableLength: number;
  readonly destroyed: boolean;
  write(chunk: string): boolean;
  end(): void;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface LiveHubDeps {
  limits: LiveLimits;
  logger: Logger;
  /** The current snapshot (built once per tick for all viewers). */
  snapshot(): Schemas['LiveSnapshot'];
  /** The chart history sent in `hello`. */
  history(): Schemas['LiveSample'][];
}

interface Viewer {
  readonly stream: ViewerStream;
  lastWriteAt: number;
}

/**
 * The live view's one stream of updates, shared by every viewer: server-sent events. Every
 * `intervalMs` while anyone watches, one snapshot is built and serialised once; it is sent
 * only when it differs from the last one sent (its times aside), so an idle service sends
 * nothing but a heartbeat comment every `heartbeatMs` (the page repeats the last chart sample
 * over the seconds it was not sent: they were the same).
 *
 * Bounded: at most `maxViewers` at once (more → TOO_MANY_VIEWERS), and a viewer that leaves
 * more than `viewerBufferBytes` unread (slow, stalled or gone without a FIN) is disconnected,
 * so no viewer can make the service hold memory for it.
 */
export class LiveHub {
  readonly #deps: LiveHubDeps;
  readonly #viewers = new Set<Viewer>();
  #timer: NodeJS.Timeout | null = null;
  /** The last snapshot sent, without its time, to tell whether anything changed. */
  #lastKey = '';
  #closed = false;

  constructor(deps: LiveHubDeps) {
    this.#deps = deps;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  /**
   * Adds a viewer: sends it `hello` and the current snapshot at once. The caller has set the
   * event-stream headers.
   * @throws TOO_MANY_VIEWERS at LIVE_MAX_VIEWERS, SHUTTING_DOWN once closed.
   */
  subscribe(stream: ViewerStream, hello: Omit<Schemas['LiveHello'], 'history' | 'intervalMs' | 'heartbeatMs' | 'maxSessions' | 'historySeconds'>): void {
    const { limits } = this.#deps;
    if (this.#closed) throw tandemError('SHUTTING_DOWN', 'the service is shutting down; reconnect later');
    if (limits.maxViewers === 0) {
      throw tandemError('TOO_MANY_VIEWERS', 'the live view\'s stream is turned off on this service (LIVE_MAX_VIEWERS=0)');
    }
    if (this.#viewers.size >= limits.maxViewers) {
      throw tandemError(
        'TOO_MANY_VIEWERS',
        `${limits.maxViewers} live viewers are streaming already (LIVE_MAX_VIEWERS); close one or retry later`,
      );
    }
    const viewer: Viewer = { stream, lastWriteAt: 0 };
    this.#viewers.add(viewer);
    stream.once('close', () => this.#remove(viewer));
    const full: Schemas['LiveHello'] = {
      ...hello,
      intervalMs: limits.intervalMs,
      heartbeatMs: limits.heartbeatMs,
      maxSessions: limits.maxSessions,
      historySeconds: limits.historySeconds,
      history: this.#deps.history(),
    };
    this.#send(viewer, event('hello', JSON.stringify(full)));
    const snapshot = this.#deps.snapshot();
    this.#send(viewer, event('snapshot', JSON.stringify(snapshot)));
    this.#timer ??= setInterval(() => this.#tick(), limits.intervalMs);
  }

  /** Ends every stream and stops the timer. Safe to call twice. */
  close(): void {
    this.#closed = true;
    for (const v of [...this.#viewers]) {
      this.#viewers.delete(v);
      v.stream.end();
    }
    this.#stopTimer();
  }

  #tick(): void {
    if (this.#viewers.size === 0) return this.#stopTimer();
    const snapshot = this.#deps.snapshot();
    // Times aside, an idle service's snapshots are all alike, and nothing is sent. The pool's
    // utilization is a lifetime ratio that drifts with the clock alone: not a change either.
    const { at: _at, sample, pool, ...rest } = snapshot;
    const { at: _sampledAt, ...values } = sample;
    const { utilization: _utilization, ...poolNow } = pool;
    const key = JSON.stringify({ ...rest, poolNow, values });
    const now = Date.now();
    if (key !== this.#lastKey) {
      this.#lastKey = key;
      const frame = event('snapshot', JSON.stringify(snapshot));
      for (const v of [...this.#viewers]) this.#send(v, frame);
      return;
    }
    for (const v of [...this.#viewers]) {
      if (now - v.lastWriteAt >= this.#deps.limits.heartbeatMs) this.#send(v, ': heartbeat\n\n');
    }
  }

  #send(viewer: Viewer, frame: string): void {
    const { stream } = viewer;
    if (stream.destroyed) return this.#remove(viewer);
    // Checked before writing: what the network has not taken since the last write is this
    // viewer's backlog; over the bound it is dropped, not buffered without end.
    if (stream.writableLength > this.#deps.limits.viewerBufferBytes) {
      this.#deps.logger.warn(
        { unsentBytes: stream.writableLength, limitBytes: this.#deps.limits.viewerBufferBytes },
        'live viewer dropped: it leaves more than LIVE_VIEWER_BUFFER_BYTES unread',
      );
      this.#remove(viewer);
      stream.destroy();
      return;
    }
    stream.write(frame);
    viewer.lastWriteAt = Date.now();
  }

  #remove(viewer: Viewer): void {
    this.#viewers.delete(viewer);
    if (this.#viewers.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** One server-sent event; JSON never contains a raw newline, so one data line suffices. */
function event(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}
