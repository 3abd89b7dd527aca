import { api } from './api.js';
import { byId, h } from './dom.js';
import { renderSchemaForm } from './schema-form.js';
import type { Pipeline, PipelineList } from './types.js';

/** Results kept on the page; older ones scroll away (a fast pipeline must not grow the page without end). */
const MAX_RESULTS_SHOWN = 200;

/**
 * "Try it": pick a pipeline, fill in its options (a form generated from its JSON Schema), START
 * a session over the WebSocket protocol (asyncapi.yaml) on this very service, watch its results
 * stream in, STOP.
 *
 * Pipelines fed by the client (live transcription's client-fed audio) hook in where the form is
 * built for the chosen pipeline (#choose): their input control (a microphone) goes next to
 * Start, and sends its frames on the same socket once `started` arrived (#onMessage).
 */
export class TryIt {
  readonly #form = byId<HTMLFormElement>('try-form');
  readonly #select = byId<HTMLSelectElement>('try-pipeline');
  readonly #description = byId('try-description');
  readonly #options = byId('try-options-fields');
  readonly #url = byId<HTMLInputElement>('try-url');
  readonly #clientTokenRow = byId('try-client-token-row');
  readonly #clientToken = byId<HTMLInputElement>('try-client-token');
  readonly #start = byId<HTMLButtonElement>('try-start');
  readonly #stop = byId<HTMLButtonElement>('try-stop');
  readonly #status = byId('try-status');
  readonly #results = byId<HTMLOListElement>('try-results');
  #pipelines: Pipeline[] = [];
  #readOptions: () => Record<string, unknown> = () => ({});
  #socket: WebSocket | null = null;

  constructor() {
    this.#select.addEventListener('change', () => this.#choose());
    this.#form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#startSession();
    });
    this.#stop.addEventListener('click', () => this.#socket?.send(JSON.stringify({ command: 'STOP' })));
  }

  set clientTokenRequired(required: boolean) {
    this.#clientTokenRow.hidden = !required;
  }

  /** Loads the pipelines (GET /api/pipelines) and returns their names. */
  async load(): Promise<string[]> {
    const list = await api<PipelineList>('GET', '/api/pipelines');
    this.#pipelines = list.items;
    const current = this.#select.value;
    this.#select.replaceChildren(...list.items.map((p) => h('option', { value: p.name }, p.default ? `${p.name} (default)` : p.name)));
    this.#select.value = list.items.some((p) => p.name === current) ? current : (list.items.find((p) => p.default)?.name ?? '');
    this.#choose();
    return list.items.map((p) => p.name);
  }

  #choose(): void {
    const pipeline = this.#pipelines.find((p) => p.name === this.#select.value);
    this.#description.textContent = pipeline
      ? `${pipeline.description} (producer: ${pipeline.producer.shape}, consumer: ${pipeline.consumer.shape})`
      : '';
    this.#readOptions = renderSchemaForm(this.#options, pipeline?.options, 'try-option');
  }

  #startSession(): void {
    if (this.#socket) return;
    let options: Record<string, unknown>;
    try {
      options = this.#readOptions();
    } catch (err) {
      this.#say(err instanceof Error ? err.message : String(err));
      return;
    }
    const start: Record<string, unknown> = { command: 'START', pipeline: this.#select.value, options };
    if (this.#url.value.trim()) start.url = this.#url.value.trim();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const clientToken = this.#clientToken.value.trim();
    // A browser cannot set headers on a WebSocket: the token travels as a subprotocol the server never echoes.
    const protocols = clientToken ? ['tandem', `bearer.${clientToken}`] : ['tandem'];
    const socket = new WebSocket(`${scheme}://${location.host}/ws`, protocols);
    this.#socket = socket;
    this.#results.replaceChildren();
    this.#running(true);
    this.#say('connecting…');
    socket.addEventListener('open', () => socket.send(JSON.stringify(start)));
    socket.addEventListener('message', (e) => this.#onMessage(String(e.data)));
    socket.addEventListener('close', (e) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#running(false);
      if (e.code !== 1000 && e.code !== 1001) this.#say(`connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`, true);
    });
  }

  #onMessage(text: string): void {
    const msg = JSON.parse(text) as { type: string; session?: string | null; seq?: number; data?: unknown; code?: string; message?: string; reason?: string; chunks?: number };
    switch (msg.type) {
      case 'started':
        this.#say(`session ${msg.session} started`);
        break;
      case 'transcript': {
        const data = typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data);
        this.#results.append(h('li', { value: String(msg.seq), 'data-seq': String(msg.seq) }, data));
        while (this.#results.childElementCount > MAX_RESULTS_SHOWN) this.#results.firstElementChild?.remove();
        break;
      }
      case 'error':
        this.#say(`${msg.code}: ${msg.message}`, true);
        break;
      case 'stopped':
        this.#say(`stopped: reason ${msg.reason}, ${msg.chunks} results`);
        break;
    }
  }

  #running(running: boolean): void {
    this.#start.disabled = running;
    this.#stop.disabled = !running;
    this.#select.disabled = running;
  }

  #say(text: string, isError = false): void {
    this.#status.textContent = text;
    this.#status.classList.toggle('error', isError);
  }
}
