import { api, ApiError } from './api.js';
import { byId, h } from './dom.js';
import type { LiveSession, LiveSnapshot } from './types.js';

const LIVE_STATES = new Set(['starting', 'running']);
/** How often an open inspect view is fetched again while its session runs, ms. */
const INSPECT_REFRESH_MS = 1000;

interface Row {
  tr: HTMLTableRowElement;
  cells: Record<'pipeline' | 'state' | 'client' | 'age' | 'delivered' | 'lag' | 'latency' | 'threads', HTMLTableCellElement>;
  stop: HTMLButtonElement;
  session: LiveSession;
}

/**
 * The session table: one row per session, updated in place (a row keeps its buttons, so focus
 * stays where the keyboard left it), filtered by state and pipeline, each id opening the full
 * inspect view (GET /api/sessions/{id}) and, for a token that may stop, a Stop button
 * (POST /api/sessions/{id}/stop: graceful, then forced, as the REST stop).
 */
export class SessionsView {
  readonly #body = byId<HTMLTableSectionElement>('sessions-body');
  readonly #state = byId<HTMLSelectElement>('filter-state');
  readonly #pipeline = byId<HTMLSelectElement>('filter-pipeline');
  readonly #count = byId('sessions-count');
  readonly #notice = byId('sessions-notice');
  readonly #inspect = byId('inspect');
  readonly #inspectTitle = byId('inspect-title');
  readonly #inspectBody = byId('inspect-body');
  readonly #rows = new Map<string, Row>();
  #canStop = false;
  #inspected: string | null = null;
  #inspectFetchedAt = 0;
  #total = 0;

  constructor() {
    this.#state.addEventListener('change', () => this.#filter());
    this.#pipeline.addEventListener('change', () => this.#filter());
    byId('inspect-close').addEventListener('click', () => this.#closeInspect());
    // Ages move on between snapshots.
    setInterval(() => {
      for (const row of this.#rows.values()) row.cells.age.textContent = age(row.session);
    }, 1000);
  }

  set canStop(value: boolean) {
    this.#canStop = value;
    for (const row of this.#rows.values()) this.#showStop(row);
  }

  /** Pipelines to filter by (from GET /api/pipelines). */
  pipelines(names: string[]): void {
    const current = this.#pipeline.value;
    this.#pipeline.replaceChildren(h('option', { value: '' }, 'all'), ...names.map((n) => h('option', { value: n }, n)));
    this.#pipeline.value = names.includes(current) ? current : '';
  }

  update(snapshot: LiveSnapshot): void {
    const seen = new Set<string>();
    let previous: HTMLTableRowElement | null = null;
    for (const s of snapshot.sessions) {
      seen.add(s.id);
      const row = this.#rows.get(s.id) ?? this.#create(s);
      row.session = s;
      this.#fill(row);
      // Move a row only when it is out of place: moving a focused button would lose its focus.
      const expected: Element | null = previous ? previous.nextElementSibling : this.#body.firstElementChild;
      if (expected !== row.tr) {
        if (previous) previous.after(row.tr);
        else this.#body.prepend(row.tr);
      }
      previous = row.tr;
    }
    for (const [id, row] of this.#rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.#rows.delete(id);
      }
    }
    const { live, retained, shown } = snapshot.totals;
    this.#total = live + retained;
    this.#notice.textContent = shown < this.#total ? `Showing the newest ${shown} of ${this.#total} sessions (LIVE_MAX_SESSIONS).` : '';
    this.#filter();
    if (this.#inspected && Date.now() - this.#inspectFetchedAt >= INSPECT_REFRESH_MS) {
      const s = this.#rows.get(this.#inspected)?.session;
      if (s && LIVE_STATES.has(s.state)) void this.#loadInspect(this.#inspected);
    }
  }

  #create(s: LiveSession): Row {
    const inspect = h('button', { type: 'button', class: 'link', 'aria-label': `Inspect session ${s.id}` }, s.id.slice(0, 8));
    inspect.addEventListener('click', () => this.#openInspect(s.id));
    const stop = h('button', { type: 'button', class: 'stop', 'aria-label': `Stop session ${s.id}` }, 'Stop');
    stop.addEventListener('click', () => void this.#stop(s.id, stop));
    const td = () => h('td');
    const cells = { pipeline: td(), state: td(), client: td(), age: td(), delivered: td(), lag: td(), latency: td(), threads: td() };
    const tr = h(
      'tr',
      { 'data-session': s.id },
      h('td', {}, inspect),
      cells.pipeline,
      cells.state,
      cells.client,
      cells.age,
      cells.delivered,
      cells.lag,
      cells.latency,
      cells.threads,
      h('td', {}, stop),
    );
    const row: Row = { tr, cells, stop, session: s };
    this.#rows.set(s.id, row);
    return row;
  }

  #fill(row: Row): void {
    const s = row.session;
    const set = (cell: HTMLTableCellElement, text: string) => {
      if (cell.textContent !== text) cell.textContent = text;
    };
    set(row.cells.pipeline, s.pipeline);
    set(row.cells.state, s.endReason ? `${s.state} (${s.endReason})` : s.state);
    row.tr.dataset.state = s.state;
    set(row.cells.client, s.clientAddress ?? '–');
    set(row.cells.age, age(s));
    set(row.cells.delivered, String(s.delivered));
    set(row.cells.lag, `${s.lag.chunks} / ${s.lag.ageSeconds.toFixed(2)} s`);
    set(row.cells.latency, `${ms(s.latencyMs.p50)} / ${ms(s.latencyMs.p99)}`);
    set(row.cells.threads, `${s.producerThreadId ?? '–'} / ${s.consumerThreadId ?? '–'}`);
    this.#showStop(row);
  }

  #showStop(row: Row): void {
    row.stop.hidden = !(this.#canStop && LIVE_STATES.has(row.session.state));
  }

  #filter(): void {
    const state = this.#state.value;
    const pipeline = this.#pipeline.value;
    let visible = 0;
    for (const row of this.#rows.values()) {
      const match = (!state || row.session.state === state) && (!pipeline || row.session.pipeline === pipeline);
      row.tr.hidden = !match;
      if (match) visible++;
    }
    this.#count.textContent = `${visible} shown`;
  }

  async #stop(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    button.textContent = 'Stopping…';
    try {
      const summary = await api<{ reason: string; chunks: number; forced: boolean }>('POST', `/api/sessions/${encodeURIComponent(id)}/stop`);
      this.#notice.textContent = `Session ${id} stopped: reason ${summary.reason}, ${summary.chunks} results${summary.forced ? ', forced' : ''}.`;
    } catch (err) {
      this.#notice.textContent = `Could not stop ${id}: ${err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)}`;
    } finally {
      button.disabled = false;
      button.textContent = 'Stop';
    }
  }

  #openInspect(id: string): void {
    this.#inspected = id;
    this.#inspect.hidden = false;
    this.#inspectTitle.textContent = `Session ${id}`;
    this.#inspectBody.textContent = 'loading…';
    void this.#loadInspect(id);
  }

  async #loadInspect(id: string): Promise<void> {
    this.#inspectFetchedAt = Date.now();
    try {
      const detail = await api<unknown>('GET', `/api/sessions/${encodeURIComponent(id)}`);
      if (this.#inspected === id) this.#inspectBody.textContent = JSON.stringify(detail, null, 2);
    } catch (err) {
      if (this.#inspected === id) this.#inspectBody.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
    }
  }

  #closeInspect(): void {
    this.#inspected = null;
    this.#inspect.hidden = true;
  }
}

function age(s: LiveSession): string {
  const end = s.endedAt ? Date.parse(s.endedAt) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(s.createdAt)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function ms(v: number | null): string {
  return v === null ? '–' : `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
}
