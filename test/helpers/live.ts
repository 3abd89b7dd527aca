import { assertMatchesSchema } from './openapi.js';

export interface LiveEvent {
  /** `hello`, `snapshot`, or `comment` for a heartbeat line. */
  event: string;
  data: any;
}

/**
 * A viewer of GET /api/live for tests: reads the server-sent events as they come, checks each
 * one's data against openapi.yaml (LiveHello, LiveSnapshot), and lets a test wait for the one
 * it expects.
 */
export class LiveViewer {
  readonly events: LiveEvent[] = [];
  readonly #controller: AbortController;
  readonly #waiters = new Set<() => void>();
  ended = false;
  error: unknown = null;

  private constructor(controller: AbortController) {
    this.#controller = controller;
  }

  /** Opens the stream; resolves once the response headers are in (any status). */
  static async open(baseUrl: string, token?: string): Promise<{ status: number; headers: Headers; body: string | null; viewer: LiveViewer | null }> {
    const controller = new AbortController();
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${baseUrl}/api/live`, { headers, signal: controller.signal });
    if (res.status !== 200) return { status: res.status, headers: res.headers, body: await res.text(), viewer: null };
    const viewer = new LiveViewer(controller);
    void viewer.#read(res.body!);
    return { status: 200, headers: res.headers, body: null, viewer };
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.#parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (err) {
      if (!this.#controller.signal.aborted) this.error = err;
    }
    this.ended = true;
    this.#wake();
  }

  #parse(block: string): void {
    if (block.startsWith(':')) {
      this.events.push({ event: 'comment', data: block.slice(1).trim() });
    } else {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      if (event === 'hello') assertMatchesSchema('LiveHello', data);
      else if (event === 'snapshot') assertMatchesSchema('LiveSnapshot', data);
      else throw new Error(`unknown event ${event}`);
      this.events.push({ event, data });
    }
    this.#wake();
  }

  /** The first event from index `from` on that satisfies `pred`. */
  waitFor(pred: (e: LiveEvent) => boolean, what: string, from = 0, timeoutMs = 15_000): Promise<LiveEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find(pred);
        if (!found && !this.ended) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        if (found) resolve(found);
        else reject(new Error(`the stream ended before ${what}`));
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last events: ${JSON.stringify(this.events.slice(-2)).slice(0, 800)}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves when the server ended the stream. */
  waitEnd(timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.ended) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => reject(new Error('timed out waiting for the stream to end')), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  close(): void {
    this.#controller.abort();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
