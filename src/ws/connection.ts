import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type WebSocket from 'ws';
import { describeError, TandemError, tandemError, type ErrorCode } from '../errors.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { DeliveredResult, Session, SessionSink } from '../sessions/session.js';
import type { FrameSource } from '../sessions/client-producer.js';
import { clientAddress } from '../net/client-address.js';
import type { TrustProxy } from '../net/trust-proxy.js';
import { RateLimit } from './rate-limit.js';
import type { SocketSlot, SocketSlots } from './socket-slots.js';
import { ResumeRelay, type SessionOwners } from './relay.js';
import {
  CLOSE_CODE,
  errorMessage,
  resumedMessage,
  startedMessage,
  stoppedMessage,
  transcriptMessage,
  type Protocol,
  type ResumeCommand,
  type StartCommand,
} from './protocol.js';

/** Per-connection limits (config.ts). */
export interface ConnectionLimits {
  /** Client frames a second before the connection is closed 1008. */
  maxMessagesPerSecond: number;
  /** Send-buffer bytes above which results wait (the client is slow). */
  sendBufferHighBytes: number;
}

/** Close code for a connection whose session was resumed on another one. */
export const CLOSE_SUPERSEDED = 4001;
/** No close frame: the peer vanished (or the heartbeat dropped it). Such a session may be resumed. */
const CLOSE_ABNORMAL = 1006;

/** Hooks for metrics; every method optional. */
export interface ConnectionObserver {
  messageReceived?(): void;
  messageSent?(): void;
  /** `count` (1 if not given) `transcript` messages a step thread wrote into the socket itself (STEP_SENDS): they count as sent too. */
  resultSentByThread?(count?: number): void;
  /** An `error` frame with this code was sent. */
  errorSent?(code: ErrorCode): void;
  /** The heartbeat pinged the client: straight into the socket's descriptor (`direct`), or through `ws` and the stream. */
  pingSent?(direct: boolean): void;
}

export interface ConnectionDeps {
  sessions: SessionRegistry;
  protocol: Protocol;
  logger: Logger;
  observer?: ConnectionObserver;
  /** Makes an error message fit for a client: no server path (see redact.ts). */
  redact(message: string): string;
  /** With several instances: where a session runs, so a RESUME for it is relayed there (relay.ts). */
  relay?: RelayDeps;
  /** Proxies whose forwarding headers name the client (TRUST_PROXY); undefined: none. */
  trustProxy?: TrustProxy;
  /** The sockets step threads may write results into (STEP_SENDS); undefined: the main thread sends every frame. */
  socketSlots?: SocketSlots;
}

export interface RelayDeps {
  owners: SessionOwners;
  /** How long the owner may take to accept the relay's connection, ms. */
  connectTimeoutMs: number;
  /** CLIENT_TOKEN, presented to the owner. */
  clientToken: string | undefined;
  connected?(outcome: 'ok' | 'timeout' | 'error', seconds: number): void;
}

/**
 * One WebSocket connection: IDLE → STARTING → STARTED → CLOSED; one session at most. RELAYED:
 * a RESUME named a session another instance runs, and every frame now goes there (relay.ts).
 */
type ConnectionState = 'IDLE' | 'STARTING' | 'STARTED' | 'RELAYED' | 'CLOSED';

/**
 * Speaks the protocol for one client. It is the session's sink: results become `transcript`
 * frames, the end becomes `stopped` and the close.
 */
export class Connection implements SessionSink {
  readonly #ws: WebSocket;
  readonly #deps: ConnectionDeps;
  readonly #clientAddress: string | null;
  #state: ConnectionState = 'IDLE';
  #session: Session | null = null;
  /** How the socket closed (set once it has). */
  #closeCode = 0;
  /**
   * This turn's results so far: none, one sent at once, or more with the socket corked until the
   * turn ends (see result()).
   */
  #turn: 'none' | 'sent' | { uncork(): void } = 'none';
  readonly #rate: RateLimit;
  readonly #sendBufferHighBytes: number;
  /** The frame being handled; the next one is chained after it. */
  #queue: Promise<void> = Promise.resolve();
  /** The client sent a frame over MAX_MESSAGE_BYTES (ws closes 1009). */
  #oversize = false;
  /** Set in state RELAYED. */
  #relay: ResumeRelay | null = null;
  /**
   * Who may write the socket: step threads write the session's live results while it lets them
   * (STEP_SENDS), from the session's first live result on; null: the main thread alone.
   */
  #slot: SocketSlot | null = null;
  /** The seq of the last result this client got, from the main thread (or its RESUME's `after`). */
  #lastSeq = 0;

  constructor(ws: WebSocket, req: IncomingMessage, deps: ConnectionDeps, limits: ConnectionLimits) {
    this.#ws = ws;
    this.#deps = deps;
    this.#rate = new RateLimit(limits.maxMessagesPerSecond);
    this.#sendBufferHighBytes = limits.sendBufferHighBytes;
    this.#clientAddress = clientAddress(req, deps.trustProxy);
    ws.on('message', (data) => this.#onMessage(data));
    ws.on('close', (code) => this.#onClose(code));
    ws.on('error', (err) => {
      if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#oversize = true;
      deps.logger.debug({ err: describeError(err) }, 'socket error');
    });
  }

  /**
   * Frames are taken strictly in the order they arrive: each waits for the one before it to be
   * handled (a START or RESUME is handled once the session runs or was refused), so two STARTs
   * back to back get `started` then ALREADY_STARTED, and a STOP after them stops what the first
   * started. Only the rate limit is applied on arrival, so a flood is cut off at once.
   */
  #onMessage(data: WebSocket.Data): void {
    this.#deps.observer?.messageReceived?.();
    if (this.#state === 'CLOSED') return;
    if (!this.#rate.take()) {
      const err = tandemError('RATE_LIMITED', 'more messages than MAX_MESSAGES_PER_SECOND allows; closing');
      this.#sendError(err);
      this.#state = 'CLOSED';
      this.#ws.close(err.wsClose, err.code);
      if (this.#session) void this.#session.stop('disconnect');
      return;
    }
    // ws 7 hands text frames over as strings and binary frames as Buffers (binaryType nodebuffer).
    const frame = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    this.#queue = this.#queue
      .then(() => this.#handle(frame))
      .catch((err: unknown) => this.#sendError(err));
  }

  /** Handles a text frame (a command) or a binary frame (audio). */
  async #handle(frame: string | Buffer): Promise<void> {
    if (this.#state === 'CLOSED') return;
    if (this.#relay) return this.#relay.fromClient(frame);
    if (typeof frame !== 'string') return this.#binary(frame);
    let command;
    try {
      command = this.#deps.protocol.parse(frame);
    } catch (err) {
      return this.#sendError(err);
    }
    if (command.command === 'START') await this.#start(command);
    else if (command.command === 'RESUME') await this.#resume(command, frame);
    else if (command.command === 'END') this.#end();
    else this.#stop();
  }

  /**
   * A binary frame: the next chunk of a session started with url `client:` (its ClientProducer
   * checks it and appends it). Anything else is refused with BAD_MESSAGE and the connection stays.
   */
  #binary(frame: Buffer): void {
    const producer = this.#session?.clientProducer;
    if (producer && this.#state === 'STARTED') return producer.append(frame);
    const why = this.#session
      ? `session ${this.#session.id} runs pipeline "${this.#session.entry.name}", which does not take client audio here (it was not started with url "client:")`
      : 'no session runs on this connection; binary frames carry audio after `started` of a session started with url "client:"';
    this.#sendError(tandemError('BAD_MESSAGE', `binary frame refused: ${why}`));
  }

  /** END: the client's audio is complete; the session completes once every result was sent. */
  #end(): void {
    const producer = this.#session?.clientProducer;
    if (producer && this.#state === 'STARTED') return producer.end();
    const why = this.#session
      ? `session ${this.#session.id} was not started with url "client:": its own producer decides when it ends (send STOP to end it now)`
      : 'no session runs on this connection';
    this.#sendError(tandemError('BAD_MESSAGE', `END refused: ${why}`));
  }

  /** This socket as where a client-fed session's frames come from: paused while its spool is full. */
  readonly #frameSource: FrameSource = {
    pause: () => this.#socket()?.pause(),
    resume: () => this.#socket()?.resume(),
  };

  #socket(): Socket | undefined {
    return (this.#ws as unknown as { _socket?: Socket })._socket;
  }

  /** Takes this connection's frames as the session's audio, if the client is its producer. */
  #feed(session: Session): void {
    session.clientProducer?.setSource(this.#frameSource);
  }

  async #start(cmd: StartCommand): Promise<void> {
    if (this.#state !== 'IDLE') {
      return this.#sendError(tandemError('ALREADY_STARTED', 'a session already runs on this connection; send STOP, then open a new connection'));
    }
    this.#state = 'STARTING';
    try {
      const session = await this.#deps.sessions.start({
        pipeline: cmd.pipeline,
        url: cmd.url ?? '',
        options: cmd.options,
        keep: cmd.keep ?? false,
        clientAddress: this.#clientAddress,
        sink: this,
      });
      this.#session = session;
      if (this.#isClosed()) {
        void session.stop('disconnect');
        return;
      }
      this.#state = 'STARTED';
      this.#feed(session);
      this.#send(startedMessage(session.id, session.entry.name, session.resumeSecret));
      this.#threadSends(session);
    } catch (err) {
      if (this.#isClosed()) return;
      this.#state = 'IDLE';
      this.#sendError(err);
      if (err instanceof TandemError && err.wsClose) this.#ws.close(err.wsClose, err.code);
    }
  }

  async #resume(cmd: ResumeCommand, raw: string): Promise<void> {
    if (this.#state !== 'IDLE') {
      return this.#sendError(tandemError('ALREADY_STARTED', 'RESUME must be the first command on a new connection'));
    }
    this.#state = 'STARTING';
    try {
      const owner = await this.#remoteOwner(cmd.session);
      if (owner !== null) return this.#relayTo(owner, raw);
      // The replay is read from disk and sent from inside resume(): `resumed()` goes out first.
      const session = await this.#deps.sessions.resume(cmd.session, cmd.resume, cmd.after, this);
      if (this.#isClosed()) {
        // The socket went while the replay was read: the session waits for another RESUME, or ends.
        if (this.#closeCode === CLOSE_ABNORMAL && !this.#oversize) session.detach(this);
        else void session.stop('disconnect');
        return;
      }
      this.#session = session;
      this.#state = 'STARTED';
      this.#feed(session);
      this.#threadSends(session);
    } catch (err) {
      if (this.#isClosed()) return;
      this.#state = 'IDLE';
      this.#sendError(err);
    }
  }

  /** From now on step threads write the session's live results into this socket, while its slot lets them. */
  #threadSends(session: Session): void {
    const socket = this.#socket();
    if (this.#slot || !socket || !this.#isOpen()) return;
    const slot = this.#deps.socketSlots?.attach(socket) ?? null;
    if (!slot) return;
    this.#slot = slot;
    slot.sent = this.#lastSeq;
    session.sendThrough(slot);
    slot.enable(this.#isOpen);
  }

  /** The instance running `id` when that is another one (and this one is part of a cluster). */
  async #remoteOwner(id: string): Promise<string | null> {
    const relay = this.#deps.relay;
    if (!relay || this.#deps.sessions.get(id)) return null;
    return relay.owners.ownerOf(id);
  }

  /** From now on this connection is the client's end of a relay to `ownerUrl`. */
  #relayTo(ownerUrl: string, resume: string): void {
    if (this.#isClosed()) return;
    const deps = this.#deps.relay!;
    this.#state = 'RELAYED';
    this.#relay = new ResumeRelay(
      this.#ws,
      {
        ownerUrl,
        resume,
        clientAddress: this.#clientAddress,
        clientToken: deps.clientToken,
        connectTimeoutMs: deps.connectTimeoutMs,
        sendBufferHighBytes: this.#sendBufferHighBytes,
        logger: this.#deps.logger,
        connected: deps.connected,
      },
      (err) => {
        // The session was not resumed there: the client may send RESUME (or START) again here.
        this.#relay = null;
        if (this.#isClosed()) return;
        this.#state = 'IDLE';
        if (err) this.#sendError(err);
      },
    );
  }

  #stop(): void {
    if (this.#session) {
      void this.#session.stop('client');
    } else if (this.#state === 'IDLE') {
      // As the seed does: STOP with nothing running ends the connection.
      this.#send(stoppedMessage(null, 'client', 0));
      this.#state = 'CLOSED';
      this.#ws.close(1000);
    }
  }

  #onClose(code: number): void {
    const wasOpen = this.#state !== 'CLOSED';
    this.#state = 'CLOSED';
    this.#slot?.disable();
    this.#closeCode = code;
    this.#relay?.clientClosed(this.#oversize ? 1009 : code);
    if (!wasOpen || !this.#session) return;
    this.#unfeed(this.#session);
    // A close frame means the client left on purpose; none means it vanished and may RESUME.
    // A frame over MAX_MESSAGE_BYTES (close 1009) ends the session whatever the peer answers:
    // resuming would only bring the same frame back.
    if (code === CLOSE_ABNORMAL && !this.#oversize) this.#session.detach(this);
    else void this.#session.stop('disconnect');
  }

  // ---- SessionSink ----

  writable(): boolean {
    return this.#ws.readyState === this.#ws.OPEN && this.#ws.bufferedAmount < this.#sendBufferHighBytes;
  }

  resumed(session: Session, after: number): void {
    // The client has every result up to `after`: those the replay and the session send come after it.
    this.#lastSeq = after;
    this.#send(resumedMessage(session.id, session.entry.name, after, session.clientProducer?.lastSeq));
  }

  superseded(session: Session): void {
    this.#slot?.disable();
    this.#unfeed(session);
    this.#session = null;
    this.#state = 'CLOSED';
    this.#ws.close(CLOSE_SUPERSEDED, 'resumed on another connection');
  }

  /**
   * A turn's first result for this client leaves at once; the ones after it in the same turn are
   * corked to the turn's end and leave in one write. The main thread handles a whole task's
   * answers in one turn: corking the first too held every client's frame until the last answer
   * was handled, so a fuller task's first results waited for all the others (docs/PERFORMANCE.md,
   * "The turn's first result at once"). A client with many results a turn still gets them in two
   * writes, not one per frame.
   */
  result(session: Session, r: DeliveredResult): boolean {
    const slot = this.#slot;
    if (slot) {
      // A step thread wrote it already (the main thread then writes the rest it may have left).
      if (r.seq <= slot.sent) return this.#sentByThread(slot);
      // Taken, so that no step thread writes meanwhile; then one may have written it just before.
      slot.take();
      if (r.seq <= slot.sent) return this.#sentByThread(slot);
    }
    if (this.#turn === 'none') {
      this.#turn = 'sent';
      process.nextTick(this.#endTurn);
    } else if (this.#turn === 'sent') {
      const socket = this.#socket();
      if (socket) {
        socket.cork();
        this.#turn = socket;
      }
    }
    if (!this.#send(transcriptMessage(session.id, r.seq, r.json, r.producedAt))) return false;
    this.#lastSeq = r.seq;
    if (slot) slot.sent = r.seq;
    return false;
  }

  countQuietResults(count: number): void {
    this.#deps.observer?.resultSentByThread?.(count);
  }

  #sentByThread(slot: SocketSlot): true {
    if (slot.restLeft) slot.take();
    this.#deps.observer?.resultSentByThread?.();
    return true;
  }

  sentThrough(): number {
    // A step thread notes what it wrote only after its write returned, still holding the slot: the
    // client may have the frame already (and RESUME after it). Taking the slot waits that out.
    this.#slot?.take();
    return Math.max(this.#lastSeq, this.#slot?.sent ?? 0);
  }

  takeBackSends(): number {
    this.#slot?.disable();
    return this.sentThrough();
  }

  /** Made once per connection: a closure per turn was one more object for every result sent. */
  readonly #endTurn = (): void => {
    const turn = this.#turn;
    this.#turn = 'none';
    if (typeof turn === 'object') turn.uncork();
  };

  failed(_session: Session, error: TandemError): void {
    this.#deps.observer?.errorSent?.(error.code);
    this.#send(errorMessage(error.code, this.#deps.redact(error.message)));
  }

  /**
   * `stopped`, then the close frame, in one write: a storm of STOPs pays one system call a
   * session for them, not two (each `writev` cost about 28 µs of the main thread in a storm;
   * docs/PERFORMANCE.md, "The storm's frames in one write").
   */
  ended(session: Session, summary: { reason: keyof typeof CLOSE_CODE; chunks: number }): void {
    this.#slot?.disable();
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const socket = this.#socket();
    socket?.cork();
    try {
      this.#send(stoppedMessage(session.id, summary.reason, summary.chunks));
      this.#state = 'CLOSED';
      this.#ws.close(CLOSE_CODE[summary.reason]);
    } finally {
      socket?.uncork();
    }
  }

  // ---- helpers ----

  /** This connection no longer feeds the session (it closed, or another one resumed it). */
  #unfeed(session: Session): void {
    const producer = session.clientProducer;
    if (producer?.source === this.#frameSource) producer.setSource(null);
  }

  /** Whether frames may still be sent: not once the close handshake began (a frame after ours breaks the protocol). */
  readonly #isOpen = (): boolean => this.#ws.readyState === this.#ws.OPEN;

  /**
   * Pings the client for the heartbeat (heartbeat.ts): while step threads may write the socket,
   * the ping frame goes straight into its descriptor (SocketSlot.ping), else through `ws`.
   */
  ping(): void {
    // A closing socket is not pinged (ws would send nothing): its close ends it.
    if (!this.#isOpen()) return;
    const direct = this.#slot?.ping() ?? false;
    if (!direct) this.#ws.ping();
    this.#deps.observer?.pingSent?.(direct);
  }

  /** Read through a method: the socket may close while START is awaited. */
  #isClosed(): boolean {
    return this.#state === 'CLOSED';
  }

  /** Sends a frame if the socket is open; whether it did. */
  #send(frame: string): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(frame);
    this.#deps.observer?.messageSent?.();
    return true;
  }

  #sendError(err: unknown): void {
    if (err instanceof TandemError) {
      this.#deps.observer?.errorSent?.(err.code);
      this.#send(errorMessage(err.code, this.#deps.redact(err.message)));
    } else {
      this.#deps.logger.error({ err }, 'unexpected error on a connection');
      this.#deps.observer?.errorSent?.('INTERNAL');
      this.#send(errorMessage('INTERNAL', 'internal error'));
    }
  }
}
