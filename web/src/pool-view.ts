import { Chart } from './chart.js';
import { byId, h } from './dom.js';
import type { LiveSample, Pool } from './types.js';

/** The pool panel: thread and queue numbers, and charts of the last minutes. */
export class PoolView {
  readonly #numbers = byId<HTMLDListElement>('pool-numbers');
  readonly #results = new Chart('Results per second', '/s');
  readonly #latency = new Chart('Latency (written → sent)', ' ms');
  readonly #threads = new Chart('Busy threads and queued tasks', '');
  readonly #samples: LiveSample[] = [];
  #spanSeconds = 300;

  constructor() {
    byId('charts').append(this.#results.element, this.#latency.element, this.#threads.element);
  }

  history(samples: LiveSample[], spanSeconds: number): void {
    this.#spanSeconds = spanSeconds;
    this.#samples.splice(0, this.#samples.length, ...samples);
    this.#drawCharts();
  }

  update(pool: Pool, sample: LiveSample): void {
    const last = this.#samples[this.#samples.length - 1];
    if (!last || sample.at > last.at) {
      // The server sends nothing while nothing changes: the seconds it skipped were like the last.
      if (last) {
        const from = Math.max(last.at + 1000, sample.at - this.#spanSeconds * 1000);
        for (let at = from; at < sample.at - 500; at += 1000) this.#samples.push({ ...last, at });
      }
      this.#samples.push(sample);
      this.#samples.splice(0, Math.max(0, this.#samples.length - this.#spanSeconds));
      this.#drawCharts();
    }
    const rows: [string, string][] = [
      ['Threads', `${pool.threads.total} (step pool ${pool.minThreads}–${pool.maxThreads}, ${pool.activeThreads} active, loops up to ${pool.loopMaxThreads})`],
      ['Held step threads', String(pool.heldThreads)],
      ['Busy', String(pool.threads.busy)],
      ['Idle', String(pool.threads.idle)],
      ['Held by loops', String(pool.threads.heldByLoops)],
      ['Queue depth', String(pool.queueDepth)],
      ['Utilization', `${(pool.utilization * 100).toFixed(1)} %`],
      ['Tasks completed', String(pool.tasksCompleted)],
    ];
    this.#numbers.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  #drawCharts(): void {
    const s = this.#samples;
    // The window grows with the history until it spans LIVE_HISTORY_SECONDS: a fresh page shows its first minute, not a sliver.
    const span = Math.min(this.#spanSeconds, Math.max(60, s.length));
    this.#results.draw([{ label: 'results', className: 'line-a', values: s.map((x) => x.resultsPerSecond) }], span);
    this.#latency.draw(
      [
        { label: 'p50', className: 'line-a', values: s.map((x) => x.latencyP50Ms) },
        { label: 'p99', className: 'line-b', values: s.map((x) => x.latencyP99Ms) },
      ],
      span,
    );
    this.#threads.draw(
      [
        { label: 'busy', className: 'line-a', values: s.map((x) => x.busyThreads) },
        { label: 'queued', className: 'line-b', values: s.map((x) => x.queueDepth) },
      ],
      span,
    );
  }
}
