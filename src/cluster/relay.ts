import WebSocket from 'ws';
import { tandemError } from '../errors.js';
import type { ResumeCommand } from '../ws/protocol.js';
import { PROTOCOL_NAME } from '../ws/door.js';

/** The downstream end of a relay: the client's connection on this instance. */
export interface RelayClient {
  /** Sends a text frame to the client; `done` once written. */
  send(frame: string, done: () => void): void;
  /** Bytes queued towards the client. */
  bufferedAmount(): number;
  /** Closes the client's connection with the owner's close code. */
  close(code: number, reason: string): void;
}

export interface RelayOptions {
  /** The owner's INSTANCE_URL (http://host:port). */
  ownerUrl: string;
  /** CLIENT_TOKEN, presented to the owner as any client would. */
  clientToken: string | undefined;
  /** How long the owner may take to open and answer the RESUME (CLUSTER_CALL_TIMEOUT_MS). */
  timeoutMs: number;
  /** Above this many bytes queued towards the client, the owner's frames are no longer read (SEND_BUFFER_HIGH_BYTES). */
  highBytes: number;
}

/**
 * Resume anywhere: a client whose session runs on another instance is served through a
 * WebSocket from this instance to the owner, which sees an ordinary client sending RESUME (the
 * spool stays on the owner's disk, and the owner closes the session's old connection 4001 as it
 * does for any RESUME). Frames go through unchanged both ways. Backpressure: while the client is
 * slow (its queue over `highBytes`) the owner's socket is not read, so the owner's own send
 * buffer fills and it pauses the session's results as it would for a slow direct client.
 */
export class Relay {
  readonly #up: WebSocket;
  readonly #client: RelayClient;
  readonly #highBytes: number;
  #paused = false;
  #closed = false;

  private constructor(up: WebSocket, client: RelayClient, highBytes: number) {
    this.#up = up;
    this.#client = client;
    this.#highBytes = highBytes;
  }

  /**
   * Opens the relay and sends RESUME; resolves once the owner answered it (its first frame,
   * `resumed` or an `error`, is already passed to the client).
   * @throws CLUSTER_UNAVAILABLE when the owner cannot be reached in time.
   */
  static open(cmd: ResumeCommand, client: RelayClient, opts: RelayOptions): Promise<Relay> {
    const url = `${opts.ownerUrl.replace(/^http/, 'ws')}/ws`;
    const headers: Record<string, string> = opts.clientToken ? { authorization: `Bearer ${opts.clientToken}` } : {};
    const up = new WebSocket(url, PROTOCOL_NAME, { headers, handshakeTimeout: opts.timeoutMs });
    const relay = new Relay(up, client, opts.highBytes);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no answer to RESUME within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      let answered = false;
      const fail = (err: Error) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        up.terminate();
        reject(tandemError('CLUSTER_UNAVAILABLE', `the instance running this session (${opts.ownerUrl}) cannot be reached to resume it: ${err.message}; retry RESUME shortly`, err));
      };
      up.once('open', () => up.send(JSON.stringify(cmd)));
      up.on('error', (err) => fail(err));
      up.on('message', (data) => {
        relay.#toClient(String(data));
        if (!answered) {
          answered = true;
          clearTimeout(timer);
          resolve(relay);
        }
      });
      up.on('close', (code, reason) => {
        if (!answered) return fail(new Error(`closed ${code}`));
        relay.#closed = true;
        // 1005/1006 carry no code to pass on: the owner vanished, tell the client it was abnormal.
        client.close(code === 1005 || code === 1006 ? 1011 : code, reason);
      });
    });
  }

  /** A frame from the client (a command, or audio) for the owner. */
  forward(frame: string | Buffer): void {
    if (this.#up.readyState === WebSocket.OPEN) this.#up.send(frame);
  }

  /**
   * The client's connection closed: with a close frame the owner is told the same, without one
   * (the client vanished) the owner sees its peer vanish too, so the session waits for RESUME.
   */
  clientClosed(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    if (code === 1006) this.#up.terminate();
    else this.#up.close(code >= 1000 && code < 5000 && code !== 1005 ? code : 1000);
  }

  #toClient(frame: string): void {
    this.#client.send(frame, () => this.#drained());
    if (!this.#paused && this.#client.bufferedAmount() > this.#highBytes) {
      this.#paused = true;
      upstreamSocket(this.#up)?.pause();
    }
  }

  #drained(): void {
    if (this.#paused && this.#client.bufferedAmount() <= this.#highBytes / 2) {
      this.#paused = false;
      upstreamSocket(this.#up)?.resume();
    }
  }
}

function upstreamSocket(ws: WebSocket): { pause(): void; resume(): void } | undefined {
  return (ws as unknown as { _socket?: { pause(): void; resume(): void } })._socket;
}
