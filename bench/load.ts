/**
 * The client side of the bench: many WebSocket clients of the seed protocol in this process.
 * Each checks its own stream (seq 1, 2, 3… with no gap and no repeat) and, while recording,
 * adds every result's end-to-end latency (client receive time − `producedAt`) to one histogram.
 */
import { createHistogram, performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { SeqCheck } from './seq-check.js';

/** Epoch ms with sub-ms precision, the same clock the server stamps `producedAt` with. */
const nowMs = () => performance.timeOrigin + performance.now();

/**
 * The steady scenarios (and side-by-side) send their STARTs evenly over this many of the
 * sessions' intervals. Sent as fast as the server takes them, the sessions' phases bunched into
 * however long starting took, which moved with the machine's phase and differed between servers
 * (the bare floors started 1,000 in 0.6 s, tandem in 2.4 s): a server whose sessions bunched
 * found more steps due in each tick, so fewer wake-ups per result. Spread over whole intervals,
 * every server's sessions fall due evenly over the interval, as independent clients' do.
 */
export const STEADY_OPEN_SPREAD_INTERVALS = 3;

/**
 * How long the steady STARTs are spread over, ms: `given` (a tool's flag, named `flag` in its
 * error) or, when absent, STEADY_OPEN_SPREAD_INTERVALS intervals.
 */
export function steadySpreadMs(intervalMs: number, given?: string, flag = '--open-spread-ms'): number {
  if (given === undefined) return STEADY_OPEN_SPREAD_INTERVALS * intervalMs;
  const ms = Number(given);
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${flag} must be a number ≥ 0, got ${given}`);
  return ms;
}

/** Waits until start `index` of `count`, spread evenly over `spreadMs` from `t0` (performance.now()), is due. */
export async function evenTurn(t0: number, index: number, count: number, spreadMs: number): Promise<void> {
  const wait = t0 + (index * spreadMs) / count - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

interface Client {
  ws: WebSocket;
  seqs: SeqCheck;
  stopSentAt: number;
  stoppedAt: number;
  closedAt: number;
}

export interface LoadOptions {
  url: string;
  sessions: number;
  /** START frame sent by every client. */
  start: Record<string, unknown>;
  /** Connections being opened at once (keeps the server's listen backlog from overflowing). */
  openConcurrency?: number;
  /** Bound on opening every session, ms. */
  openTimeoutMs?: number;
  /**
   * Sends the STARTs evenly over this many ms (session i not before i × openSpreadMs / sessions),
   * rather than as fast as the server takes them; 0: as fast as it can.
   */
  openSpreadMs?: number;
}

export class Load {
  readonly #opts: LoadOptions;
  readonly #clients: Client[] = [];
  /** Every socket ever opened, started or not, so terminate() leaves none behind. */
  readonly #sockets = new Set<WebSocket>();
  /** Latency in µs (a histogram takes integers), recorded only between startRecording/stopRecording. */
  readonly latencyUs = createHistogram();
  recording = false;
  /** Results counted while recording. */
  received = 0;
  /** Results received at all. */
  totalReceived = 0;
  /** Results whose producedAt is later than their receipt (clock skew between processes). */
  negative = 0;
  readonly errors: string[] = [];

  constructor(opts: LoadOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#clients.length;
  }

  /** Seqs missing from the clients' streams so far (see SeqCheck). */
  get gaps(): number {
    return this.#clients.reduce((n, c) => n + c.seqs.gaps, 0);
  }

  /** Results that arrived after a higher seq of their stream. */
  get reorders(): number {
    return this.#clients.reduce((n, c) => n + c.seqs.reorders, 0);
  }

  /** Results a client received twice. */
  get duplicates(): number {
    return this.#clients.reduce((n, c) => n + c.seqs.duplicates, 0);
  }

  /** Opens every session and resolves when each has its `started`. */
  async open(): Promise<void> {
    const { sessions, openConcurrency = 100, openTimeoutMs = 120_000, openSpreadMs = 0 } = this.#opts;
    const deadline = Date.now() + openTimeoutMs;
    const t0 = performance.now();
    let index = 0;
    const worker = async () => {
      while (index < sessions) {
        await evenTurn(t0, index++, sessions, openSpreadMs);
        if (Date.now() > deadline) throw new Error(`opening ${sessions} sessions took over ${openTimeoutMs} ms`);
        this.#clients.push(await this.#openOne(deadline));
      }
    };
    await Promise.all(Array.from({ length: Math.min(openConcurrency, sessions) }, worker));
  }

  #openOne(deadline: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.#opts.url, { perMessageDeflate: false });
      this.#sockets.add(ws);
      const client: Client = { ws, seqs: new SeqCheck(), stopSentAt: 0, stoppedAt: 0, closedAt: 0 };
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('a session did not start in time'));
      }, Math.max(1, deadline - Date.now()));
      ws.on('open', () => ws.send(JSON.stringify({ command: 'START', ...this.#opts.start })));
      ws.on('message', (data) => {
        const at = nowMs();
        const msg = JSON.parse(data as string) as { type: string; seq?: number; producedAt?: number; message?: string };
        if (msg.type === 'transcript') this.#onTranscript(client, msg.seq!, msg.producedAt!, at);
        else if (msg.type === 'started') {
          clearTimeout(timer);
          resolve(client);
        } else if (msg.type === 'stopped') client.stoppedAt = at;
        else if (msg.type === 'error') this.#error(msg.message ?? 'error');
      });
      ws.on('close', () => {
        client.closedAt = nowMs();
        clearTimeout(timer);
        reject(new Error('closed before started'));
      });
      ws.on('error', (err) => {
        this.#error(err.message);
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  #onTranscript(c: Client, seq: number, producedAt: number, at: number): void {
    c.seqs.receive(seq);
    this.totalReceived++;
    if (!this.recording) return;
    this.received++;
    const latencyMs = at - producedAt;
    if (latencyMs < 0) this.negative++;
    this.latencyUs.record(Math.max(1, Math.round(latencyMs * 1000)));
  }

  #error(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }

  startRecording(): void {
    this.latencyUs.reset();
    this.received = 0;
    this.recording = true;
  }

  stopRecording(): void {
    this.recording = false;
  }

  /** Resolves once every client has at least `n` results, or after `timeoutMs`; returns how many have. */
  async waitForResults(n: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = this.#clients.filter((c) => c.seqs.received >= n).length;
      if (ready === this.#clients.length || Date.now() > deadline) return ready;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Sends STOP on every client in one go and waits for each close.
   * Returns each client's STOP → close and STOP → `stopped` times in ms (Infinity when it did not
   * close within `timeoutMs`).
   */
  async stopAll(timeoutMs = 30_000): Promise<{ closeMs: number[]; stoppedMs: number[] }> {
    const open = this.#clients.filter((c) => c.ws.readyState === WebSocket.OPEN);
    const closed = open.map(
      (c) => new Promise<void>((resolve) => (c.ws.readyState === WebSocket.CLOSED ? resolve() : c.ws.once('close', () => resolve()))),
    );
    for (const c of open) {
      c.stopSentAt = nowMs();
      c.ws.send('{"command":"STOP"}');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    const since = (at: number, c: Client) => (at > 0 ? at - c.stopSentAt : Number.POSITIVE_INFINITY);
    return { closeMs: open.map((c) => since(c.closedAt, c)), stoppedMs: open.map((c) => since(c.stoppedAt, c)) };
  }

  /** Drops every connection that is still open. */
  terminate(): void {
    for (const ws of this.#sockets) ws.terminate();
  }
}
