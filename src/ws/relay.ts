/**
 * RESUME that reaches an instance which does not run the session. The session's spool and
 * threads stay where they are: this instance opens a WebSocket of its own to the instance that
 * runs it (its owner), sends the client's RESUME there unchanged, and from then on passes every
 * frame both ways, in order, until either side closes. The owner checks the resume secret as for
 * any client, so a relay can do nothing the client could not do itself.
 *
 * Backpressure: a side whose send buffer is above SEND_BUFFER_HIGH_BYTES stops the other side's
 * socket from being read until it drains, so a slow client slows the owner's sends to this
 * relay (and its session's own flow control takes it from there) instead of filling memory here.
 *
 * Closes are mirrored, so that the owner treats the session as it would a direct client: a
 * close frame ends it, a vanished socket (1006) leaves it waiting for another RESUME — through
 * any instance.
 */
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { tandemError } from '../errors.js';
import { PROTOCOL_NAME } from './door.js';

/** Where a session runs, when that is another instance. */
export interface SessionOwners {
  /**
   * The base URL (INSTANCE_URL, `http://host:port`) of the instance running session `id`, or
   * null when no other instance does (it runs here, ended, or never existed).
   * @throws a coded error when it cannot be told (the shared registry is unreachable).
   */
  ownerOf(id: string): Promise<string | null>;
}

export interface RelayOptions {
  /** The owner's base URL. */
  ownerUrl: string;
  /** The client's RESUME frame, sent to the owner as it came. */
  resume: string;
  /** The client's address, passed on in X-Forwarded-For (the owner uses it when TRUST_PROXY names this instance). */
  clientAddress: string | null;
  /** CLIENT_TOKEN, when the owner requires one. */
  clientToken: string | undefined;
  /** How long the owner may take to accept the connection, ms. */
  connectTimeoutMs: number;
  /** Send-buffer bytes above which the other side is no longer read. */
  sendBufferHighBytes: number;
  logger: Logger;
  /** Told once whether the owner was reached, and how long that took. */
  connected?(outcome: 'ok' | 'timeout' | 'error', seconds: number): void;
}

/** Close codes a close frame may carry (RFC 6455 §7.4): anything else is sent as 1000. */
const sendable = (code: number) => code === 1000 || code === 1001 || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
const ABNORMAL = 1006;
const NO_STATUS = 1005;

type Socket = { pause(): void; resume(): void; once(event: 'drain', fn: () => void): void } | undefined;
const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket?: Socket })._socket;

/**
 * One client connection relayed to its session's owner. Created when a RESUME names a session
 * another instance runs; `fromClient` takes every later client frame, `clientClosed` the close.
 */
export class ResumeRelay {
  readonly #client: WebSocket;
  readonly #upstream: WebSocket;
  readonly #opts: RelayOptions;
  /** Client frames that arrived before the owner accepted the connection, in order. */
  #pending: Array<string | Buffer> = [];
  #opened = false;
  /** The owner answered the RESUME with `resumed`: from now on frames only pass through. */
  #resumed = false;
  #done = false;
  /** Sinks over their high mark whose source is paused until they drain. */
  readonly #held = new Set<WebSocket>();
  readonly #onRefused: (err: Error | null) => void;
  readonly #startedAt = process.hrtime.bigint();

  /**
   * @param onRefused the relay ended before the session was resumed, and the client's connection
   *   stays open and may try again: the owner could not be reached or refused the connection
   *   (with the error to send), or it answered the RESUME with an error (already passed on: null).
   */
  constructor(client: WebSocket, opts: RelayOptions, onRefused: (err: Error | null) => void) {
    this.#client = client;
    this.#opts = opts;
    this.#onRefused = onRefused;
    const headers: Record<string, string> = {};
    if (opts.clientAddress) headers['X-Forwarded-For'] = opts.clientAddress;
    if (opts.clientToken) headers.Authorization = `Bearer ${opts.clientToken}`;
    this.#upstream = new WebSocket(wsUrl(opts.ownerUrl), PROTOCOL_NAME, {
      headers,
      handshakeTimeout: opts.connectTimeoutMs,
      perMessageDeflate: false,
    });
    this.#upstream.on('open', () => this.#onOpen());
    this.#upstream.on('message', (data) => this.#toClient(data));
    this.#upstream.on('close', (code, reason) => this.#upstreamClosed(code, reason));
    this.#upstream.on('unexpected-response', (_req, res) => {
      // The owner's door refused the upgrade (its problem+json names why): not this client's fault.
      this.#refused(tandemError('OWNER_UNREACHABLE', `the instance running this session refused the relay (HTTP ${res.statusCode}); retry RESUME`));
      res.resume();
    });
    this.#upstream.on('error', (err) => {
      const timeout = /timed out|timeout/i.test(err.message);
      this.#refused(
        tandemError('OWNER_UNREACHABLE', `the instance running this session could not be reached${timeout ? ` within ${opts.connectTimeoutMs} ms` : ''}; retry RESUME`),
        timeout ? 'timeout' : 'error',
      );
    });
  }

  /** A frame from the client, passed on in order. */
  fromClient(frame: string | Buffer): void {
    if (this.#done) return;
    if (!this.#opened) {
      this.#pending.push(frame);
      return;
    }
    this.#upstream.send(frame);
    this.#holdWhileFull(this.#upstream, this.#client);
  }

  /** The client's connection closed with `code`: the owner sees the same. */
  clientClosed(code: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#pending = [];
    if (code === ABNORMAL || !this.#opened) this.#upstream.terminate();
    else if (code === NO_STATUS) this.#upstream.close();
    else this.#upstream.close(sendable(code) ? code : 1000);
  }

  #onOpen(): void {
    if (this.#done) return this.#upstream.terminate();
    this.#opened = true;
    this.#opts.connected?.('ok', this.#elapsed());
    this.#upstream.send(this.#opts.resume);
    for (const frame of this.#pending) this.#upstream.send(frame);
    this.#pending = [];
  }

  #toClient(data: WebSocket.Data): void {
    if (this.#client.readyState !== WebSocket.OPEN) return;
    this.#client.send(data);
    if (!this.#resumed && typeof data === 'string') this.#answered(data);
    this.#holdWhileFull(this.#client, this.#upstream);
  }

  /** While `sink` cannot take more, `source` is not read: TCP pushes back on its sender. */
  #holdWhileFull(sink: WebSocket, source: WebSocket): void {
    if (sink.bufferedAmount <= this.#opts.sendBufferHighBytes) return;
    const from = socketOf(source);
    const to = socketOf(sink);
    if (!from || !to || this.#held.has(sink)) return;
    // Frames already read from `source` may still arrive while it is paused: one wait per sink is enough.
    this.#held.add(sink);
    from.pause();
    to.once('drain', () => {
      this.#held.delete(sink);
      from.resume();
    });
  }

  /**
   * The owner's first answer: `resumed`, or an error (wrong secret, gap, …). After an error the
   * relay ends and the client's connection is its own again, as after a refused RESUME here.
   */
  #answered(frame: string): void {
    let type: unknown;
    try {
      type = (JSON.parse(frame) as { type?: unknown }).type;
    } catch {
      return;
    }
    if (type === 'resumed') {
      this.#resumed = true;
    } else if (type === 'error') {
      this.#done = true;
      this.#upstream.close(1000);
      this.#onRefused(null);
    }
  }

  #upstreamClosed(code: number, reason: string): void {
    if (!this.#opened || this.#done) return;
    this.#done = true;
    if (this.#client.readyState !== WebSocket.OPEN) return;
    // The owner vanished without a close frame: so does this connection, and the client may RESUME again.
    if (code === ABNORMAL) this.#client.terminate();
    else if (code === NO_STATUS) this.#client.close();
    else this.#client.close(sendable(code) ? code : 1000, reason);
  }

  #refused(err: Error, outcome: 'timeout' | 'error' = 'error'): void {
    if (this.#opened || this.#done) return;
    this.#done = true;
    this.#opts.connected?.(outcome, this.#elapsed());
    this.#opts.logger.warn({ owner: this.#opts.ownerUrl, err: err.message }, 'resume relay: owner not reached');
    this.#upstream.terminate();
    this.#onRefused(err);
  }

  #elapsed(): number {
    return Number(process.hrtime.bigint() - this.#startedAt) / 1e9;
  }
}

/** `http://host:port` → `ws://host:port/ws` (https → wss). */
export function wsUrl(base: string): string {
  const u = new URL('/ws', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}
