/**
 * Metrics counted on the data path, once or several times per result. prom-client's own
 * `inc()` and `observe()` hash their labels and validate their arguments on every call, which
 * cost about 4 µs of the main thread per result (docs/PERFORMANCE.md): here a count is a plain
 * addition into a number or an array kept per label value, and becomes a prom-client metric only
 * when it is scraped. A counter carries one label; a histogram none, one or several.
 */
import { Counter, type Metric, type Registry } from 'prom-client';

/** A counter whose increments are summed in place and handed to prom-client at scrape time. */
export class TallyCounter {
  readonly #counter: Counter<string>;
  readonly #pending = new Map<string, number>();

  constructor(registry: Registry, name: string, help: string, readonly labelName: string) {
    const pending = this.#pending;
    this.#counter = new Counter({
      name,
      help,
      labelNames: [labelName],
      registers: [registry],
      collect() {
        for (const [value, n] of pending) if (n > 0) this.inc({ [labelName]: value }, n);
        pending.clear();
      },
    });
  }

  /** Exported at 0 from the start, so a rate() over it has a series before the first event. */
  zero(value: string): void {
    this.#counter.inc({ [this.labelName]: value }, 0);
  }

  add(value: string, n = 1): void {
    this.#pending.set(value, (this.#pending.get(value) ?? 0) + n);
  }
}

interface Series {
  /** Observations per bucket (not cumulative); the last is +Inf's. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram kept as plain arrays and read by the registry through `get()`, in the shape
 * prom-client's own Histogram gives (`_bucket` with `le`, `_sum`, `_count`), so scrapes,
 * promtool and readers of `get()` (web/throughput.ts) see no difference. A series is named by a
 * key: its one label's value, or for none or several labels a key `series()` made once.
 */
export class TallyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, Series & { labels: Record<string, string> }>();

  constructor(registry: Registry, name: string, help: string, bounds: readonly number[], labelNames: string | readonly string[]) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
    this.#labelNames = typeof labelNames === 'string' ? [labelNames] : labelNames;
    registry.registerMetric(this as unknown as Metric);
  }

  /** The key of the series with these label values (in the constructor's order), exported at 0 from now. */
  series(...values: string[]): string {
    const key = values.join('\u0000');
    this.#at(key);
    return key;
  }

  zero(key: string): void {
    this.#at(key);
  }

  /** Records `v`; a value that is not a finite number is not recorded (prom-client would throw). */
  observe(key: string, v: number): void {
    if (!Number.isFinite(v)) return;
    const s = this.#at(key);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  #at(key: string): Series & { labels: Record<string, string> } {
    let s = this.#series.get(key);
    if (!s) {
      const values = key.split('\u0000');
      const labels = Object.fromEntries(this.#labelNames.map((n, i) => [n, values[i] ?? '']));
      s = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0, labels };
      this.#series.set(key, s);
    }
    return s;
  }

  get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += s.counts[i]!;
        const le = i < this.#bounds.length ? this.#bounds[i]! : '+Inf';
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.#series.clear();
  }
}

/**
 * A counter that follows a running total kept elsewhere (Piscina's completed tasks, decoders
 * loaded): at each scrape it adds what the total grew by since the last one.
 */
export function totalCounter(registry: Registry, name: string, help: string, readTotal: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const total = readTotal();
      if (total > seen) this.inc(total - seen);
      seen = Math.max(seen, total);
    },
  });
}
