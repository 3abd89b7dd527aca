import { api } from './api.js';
import { byId, h } from './dom.js';
import { Microphone } from './microphone.js';
import { renderSchemaForm } from './schema-form.js';
import type { Pipeline, PipelineList } from './types.js';

/** Results kept on the page; older ones scroll away (a fast pipeline must not grow the page without end). */
const MAX_RESULTS_SHOWN = 200;
/**
 * Audio the socket may hold unsent before the microphone gives up (the server stopped reading:
 * its spool is full). A microphone cannot wait, so past this the page stops it and sends END
 * rather than grow without bound: 2 MiB is about 11 s of 48 kHz f32le.
 */
const MIC_SEND_BUFFER_MAX_BYTES = 2 * 1024 * 1024;

interface Utterance {
  text: string;
}

/** A pipeline the microphone can feed: it takes url "client:" and says the audio's rate and encoding in its options. */
function takesMicrophone(pipeline: Pipeline | undefined): boolean {
  const properties = (pipeline?.options as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
  return !!pipeline?.available && pipeline.urls.includes('client:') && 'sampleRate' in properties && 'encoding' in properties;
}

/**
 * "Try it": pick a pipeline, fill in its options (a form generated from its JSON Schema), START
 * a session over the WebSocket protocol (asyncapi.yaml) on this very service, watch its results
 * stream in, STOP.
 *
 * Pipelines fed by the client's audio (`transcribe`, url "client:") get a Microphone button next
 * to Start (#choose): it starts the session with the microphone as its producer and, once
 * `started` arrived (#onMessage), sends its frames on the same socket; the partial hypothesis is
 * shown in place and each final utterance becomes a line. Stop microphone sends END, so the last
 * words become final before `stopped` (reason completed); Stop still ends at once.
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
  readonly #micStart = byId<HTMLButtonElement>('try-mic');
  readonly #micStop = byId<HTMLButtonElement>('try-mic-stop');
  readonly #micHint = byId('try-mic-hint');
  readonly #partial = byId('try-partial');
  #pipelines: Pipeline[] = [];
  #readOptions: () => Record<string, unknown> = () => ({});
  #socket: WebSocket | null = null;
  /** The microphone feeding the current session, if one does. */
  #mic: Microphone | null = null;
  /** True from `started` until END or STOP is sent: audio frames go out only then. */
  #audioOpen = false;

  constructor() {
    this.#select.addEventListener('change', () => this.#choose());
    this.#form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#startSession();
    });
    this.#stop.addEventListener('click', () => {
      this.#audioOpen = false;
      this.#socket?.send(JSON.stringify({ command: 'STOP' }));
      void this.#closeMicrophone();
    });
    this.#micStart.addEventListener('click', () => void this.#startMicrophone());
    this.#micStop.addEventListener('click', () => void this.#endMicrophone());
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
    const mic = takesMicrophone(pipeline);
    this.#micStart.hidden = !mic;
    this.#micStop.hidden = !mic;
    this.#micHint.hidden = !mic;
  }

  /** Asks for the microphone (in the click, so its AudioContext may run), then starts a session it feeds. */
  async #startMicrophone(): Promise<void> {
    if (this.#socket || this.#mic) return;
    const mic = new Microphone();
    this.#mic = mic;
    this.#running(true);
    this.#say('asking for the microphone…');
    try {
      await mic.open();
    } catch (err) {
      this.#mic = null;
      this.#running(false);
      await mic.close();
      this.#say(`no microphone: ${err instanceof Error ? err.message : String(err)}`, true);
      return;
    }
    // f32le at the context's own rate: the server resamples to 16 kHz.
    this.#startSession({ url: 'client:', options: { sampleRate: mic.sampleRate, encoding: 'f32le' } });
  }

  /** Stop microphone: the last frame, then END; the session completes once every result is in. */
  async #endMicrophone(why = 'microphone off; finishing the last words…', isError = false): Promise<void> {
    const socket = this.#socket;
    if (!this.#mic || !socket) return;
    this.#micStop.disabled = true;
    await this.#closeMicrophone();
    if (!this.#audioOpen) return;
    this.#audioOpen = false;
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ command: 'END' }));
    this.#say(why, isError);
  }

  /** Stops capturing (what was captured is still sent). Safe to call with no microphone. */
  async #closeMicrophone(): Promise<void> {
    const mic = this.#mic;
    this.#mic = null;
    this.#micStop.disabled = true;
    await mic?.close();
  }

  #startSession(client?: { url: string; options: Record<string, unknown> }): void {
    if (this.#socket) return;
    let options: Record<string, unknown>;
    try {
      options = { ...this.#readOptions(), ...client?.options };
    } catch (err) {
      this.#say(err instanceof Error ? err.message : String(err));
      if (client) void this.#closeMicrophone().then(() => this.#running(false));
      return;
    }
    const start: Record<string, unknown> = { command: 'START', pipeline: this.#select.value, options };
    const url = client?.url ?? this.#url.value.trim();
    if (url) start.url = url;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const clientToken = this.#clientToken.value.trim();
    // A browser cannot set headers on a WebSocket: the token travels as a subprotocol the server never echoes.
    const protocols = clientToken ? ['tandem', `bearer.${clientToken}`] : ['tandem'];
    const socket = new WebSocket(`${scheme}://${location.host}/ws`, protocols);
    this.#socket = socket;
    this.#results.replaceChildren();
    this.#partial.textContent = '';
    this.#partial.hidden = !client;
    this.#running(true);
    this.#say('connecting…');
    socket.addEventListener('open', () => socket.send(JSON.stringify(start)));
    socket.addEventListener('message', (e) => this.#onMessage(String(e.data)));
    socket.addEventListener('close', (e) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#audioOpen = false;
      void this.#closeMicrophone();
      this.#running(false);
      if (e.code !== 1000 && e.code !== 1001) this.#say(`connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`, true);
    });
  }

  #onMessage(text: string): void {
    const msg = JSON.parse(text) as { type: string; session?: string | null; seq?: number; data?: unknown; code?: string; message?: string; reason?: string; chunks?: number };
    switch (msg.type) {
      case 'started':
        this.#say(`session ${msg.session} started${this.#mic ? '; listening' : ''}`);
        if (this.#mic) {
          this.#audioOpen = true;
          this.#micStop.disabled = false;
        }
        this.#mic?.capture((bytes) => this.#sendAudio(bytes));
        break;
      case 'transcript': {
        if (!this.#partial.hidden) {
          this.#showTranscription(msg.data as { partial: string | null; final: Utterance[] });
          break;
        }
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

  /** A microphone session's result: each final utterance becomes a line, the partial hypothesis shows in place. */
  #showTranscription(data: { partial: string | null; final: Utterance[] }): void {
    for (const utterance of data.final) this.#results.append(h('li', { class: 'final' }, utterance.text));
    while (this.#results.childElementCount > MAX_RESULTS_SHOWN) this.#results.firstElementChild?.remove();
    this.#partial.textContent = data.partial ?? '';
  }

  #sendAudio(bytes: ArrayBuffer): void {
    const socket = this.#socket;
    if (!this.#audioOpen || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(bytes);
    if (this.#mic && socket.bufferedAmount > MIC_SEND_BUFFER_MAX_BYTES) {
      void this.#endMicrophone('the server is not keeping up with the microphone: stopped it; finishing…', true);
    }
  }

  #running(running: boolean): void {
    this.#start.disabled = running;
    this.#stop.disabled = !running;
    this.#select.disabled = running;
    this.#micStart.disabled = running;
    if (!running) this.#micStop.disabled = true;
  }

  #say(text: string, isError = false): void {
    this.#status.textContent = text;
    this.#status.classList.toggle('error', isError);
  }
}
