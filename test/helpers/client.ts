import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import WebSocket from 'ws';
import { parse as parseYaml } from 'yaml';

const specFile = fileURLToPath(new URL('../../../asyncapi.yaml', import.meta.url));
const SERVER_MESSAGES: Record<string, string> = {
  started: 'Started',
  resumed: 'Resumed',
  transcript: 'Transcript',
  error: 'Error',
  stopped: 'Stopped',
};

let validators: Map<string, ValidateFunction> | undefined;
function serverValidators(): Map<string, ValidateFunction> {
  if (!validators) {
    const spec = parseYaml(fs.readFileSync(specFile, 'utf8')) as { components: { schemas: Record<string, object> } };
    const ajv = new Ajv({ strict: false, allErrors: true });
    validators = new Map(Object.entries(SERVER_MESSAGES).map(([type, name]) => [type, ajv.compile(spec.components.schemas[name]!)]));
  }
  return validators;
}

/** Throws unless `msg` is one of the server messages asyncapi.yaml describes. */
export function assertServerMessage(msg: unknown): void {
  const type = (msg as { type?: string }).type;
  const validate = type ? serverValidators().get(type) : undefined;
  if (!validate) throw new Error(`server sent a message of unknown type: ${JSON.stringify(msg)}`);
  if (!validate(msg)) throw new Error(`server message does not match asyncapi.yaml: ${JSON.stringify(validate.errors)} in ${JSON.stringify(msg)}`);
}

// The fields every server message may carry; tests narrow on `type`.
export interface ServerMessage {
  type: 'started' | 'resumed' | 'transcript' | 'error' | 'stopped';
  session?: string | null;
  pipeline?: string;
  seq?: number;
  data?: unknown;
  producedAt?: number;
  timestamp?: number;
  code?: string;
  message?: string;
  reason?: string;
  resume?: string;
  after?: number;
  /** `resumed` of a client-fed session: the last chunk of audio the server holds. */
  audio?: number;
  chunks?: number;
  receivedAt: number;
}

/**
 * A protocol client for tests: records every frame (validated against asyncapi.yaml), and lets a
 * test wait for the message or the close it expects, with a generous timeout.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly messages: ServerMessage[] = [];
  readonly invalid: string[] = [];
  closeCode: number | null = null;
  readonly #waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as ServerMessage;
      try {
        assertServerMessage(msg);
      } catch (err) {
        this.invalid.push((err as Error).message);
      }
      msg.receivedAt = performance.timeOrigin + performance.now();
      this.messages.push(msg);
      this.#wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.#wake();
    });
    ws.on('error', () => this.#wake());
  }

  static open(url: string, options?: WebSocket.ClientOptions): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** START and wait for `started`; returns the session id. */
  async start(fields: Record<string, unknown> = {}): Promise<string> {
    const from = this.messages.length;
    this.send({ command: 'START', ...fields });
    const m = await this.waitFor((m) => m.type === 'started' || m.type === 'error', 'started', from);
    if (m.type === 'error') throw new Error(`START refused: ${m.code}: ${m.message}`);
    return m.session as string;
  }

  transcripts(): ServerMessage[] {
    return this.messages.filter((m) => m.type === 'transcript');
  }

  /** Resolves with the first message from index `from` on that satisfies `pred`. */
  waitFor(pred: (m: ServerMessage) => boolean, what: string, from = 0, timeoutMs = 15_000): Promise<ServerMessage> {
    return this.#until(() => this.messages.slice(from).find(pred), what, timeoutMs);
  }

  waitForTranscripts(n: number, timeoutMs = 15_000): Promise<ServerMessage[]> {
    return this.#until(() => (this.transcripts().length >= n ? this.transcripts() : undefined), `${n} transcripts`, timeoutMs);
  }

  waitClose(timeoutMs = 15_000): Promise<number> {
    return this.#until(() => this.closeCode ?? undefined, 'close', timeoutMs);
  }

  #until<T>(get: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = get();
        if (v === undefined) return false;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.messages.slice(-5))}`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  close(): void {
    this.ws.close();
  }

  /** Drops the TCP connection without a close frame. */
  terminate(): void {
    this.ws.terminate();
  }
}

/** Asserts seqs are exactly 1..n in order: no gap, no repeat, no reordering. */
export function assertInOrder(transcripts: ServerMessage[]): void {
  transcripts.forEach((t, i) => {
    if (t.seq !== i + 1) throw new Error(`transcript #${i + 1} has seq ${t.seq}: ${transcripts.map((x) => x.seq).join(',')}`);
  });
}
