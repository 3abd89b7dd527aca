/**
 * One `transcribe` session as a bench client sees it: START, every transcript with the instant
 * it arrived, `stopped`, the close. The service's own view of it comes from REST
 * (GET /api/sessions/{id}, open on loopback without ADMIN_TOKEN).
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** Epoch ms with sub-ms precision, the clock the server stamps `producedAt` with. */
export const nowMs = () => performance.timeOrigin + performance.now();

/** Bound on any single wait for the service, ms. */
const ANSWER_TIMEOUT_MS = 30_000;

export interface Utterance {
  text: string;
  start: number;
  end: number;
}

export interface Transcript {
  seq: number;
  /** When the server wrote the chunk (epoch ms). */
  producedAt: number;
  /** When this client received the result (epoch ms). */
  receivedAt: number;
  partial: string | null;
  final: Utterance[];
}

interface Frame {
  type: string;
  session?: string;
  seq?: number;
  producedAt?: number;
  data?: { partial: string | null; final: Utterance[] };
  reason?: string;
  code?: string;
  message?: string;
}

export class SpeechSession {
  readonly transcripts: Transcript[] = [];
  readonly #ws: WebSocket;
  id = '';
  /** Epoch ms: START sent, `started` received, `stopped` received (0: not yet). */
  startSentAt = 0;
  startedAt = 0;
  stoppedAt = 0;
  stopReason: string | null = null;
  readonly errors: string[] = [];
  readonly closed: Promise<void>;
  #listeners = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data) => {
      const at = nowMs();
      const f = JSON.parse(String(data)) as Frame;
      if (f.type === 'transcript') {
        this.transcripts.push({ seq: f.seq!, producedAt: f.producedAt!, receivedAt: at, partial: f.data!.partial, final: f.data!.final });
      } else if (f.type === 'started') {
        this.id = f.session!;
        this.startedAt = at;
      } else if (f.type === 'stopped') {
        this.stoppedAt = at;
        this.stopReason = f.reason ?? null;
      } else if (f.type === 'error') this.errors.push(`${f.code}: ${f.message}`);
      for (const l of this.#listeners) l();
    });
    ws.on('close', () => {
      for (const l of this.#listeners) l();
    });
    // After open, a dying link ends in 'close', which is what every wait here watches.
    ws.on('error', () => {});
  }

  /** Connects, sends START and resolves once `started` came (rejects with the error otherwise). */
  static async start(url: string, start: Record<string, unknown>): Promise<SpeechSession> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const s = new SpeechSession(ws);
    s.startSentAt = nowMs();
    ws.send(JSON.stringify({ command: 'START', pipeline: 'transcribe', ...start }));
    await s.until(() => s.startedAt > 0 || s.errors.length > 0, 'started');
    if (!s.startedAt) {
      ws.terminate();
      throw new Error(`START was answered with ${s.errors[0]}`);
    }
    return s;
  }

  /** Resolves once `done()` holds (checked at every frame and at the close). */
  until(done: () => boolean, what: string, timeoutMs = ANSWER_TIMEOUT_MS): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done()) finish();
        else if (this.#ws.readyState === WebSocket.CLOSED) finish(new Error(`the connection closed before ${what}`));
      };
      const timer = setTimeout(() => finish(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.#listeners.add(check);
    });
  }

  /** Sends STOP and waits for the close. */
  async stop(): Promise<void> {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send('{"command":"STOP"}');
    await this.until(() => this.#ws.readyState === WebSocket.CLOSED, 'close after STOP');
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

/** GET /api/sessions/{id} (the fields the bench reads). */
export interface SessionView {
  counters: { produced: number; consumed: number; delivered: number };
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; max: number | null; samples: number };
  summary: { forced: boolean; reason: string } | null;
}

export async function inspect(port: number, id: string): Promise<SessionView> {
  const res = await fetch(`http://127.0.0.1:${port}/api/sessions/${id}`);
  if (!res.ok) throw new Error(`GET /api/sessions/${id}: ${res.status}`);
  return (await res.json()) as SessionView;
}
