/**
 * The last `size` latencies of one session, for its percentiles in inspect. A fixed ring:
 * memory per session stays constant however long it runs.
 */
export class LatencyWindow {
  readonly #values: Float64Array;
  #count = 0;

  /** @param size how many recent samples to keep (default 256). */
  constructor(size = 256) {
    this.#values = new Float64Array(size);
  }

  record(ms: number): void {
    this.#values[this.#count % this.#values.length] = ms;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** Percentiles in ms over the window, or nulls when nothing was recorded. */
  percentiles(): { p50: number | null; p95: number | null; p99: number | null; max: number | null } {
    const n = Math.min(this.#count, this.#values.length);
    if (n === 0) return { p50: null, p95: null, p99: null, max: null };
    const sorted = this.#values.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[n - 1]! };
  }
}
