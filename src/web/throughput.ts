import type { Registry } from 'prom-client';
import type { components } from '../generated/openapi.js';
import { METRIC_PREFIX } from '../metrics/buckets.js';
import type { WorkerPool } from '../pool/worker-pool.js';

type LiveSample = components['schemas']['LiveSample'];

/** The metric that already counts every result sent and its latency (src/metrics/flow.ts). */
const LATENCY_METRIC = METRIC_PREFIX + 'end_to_end_latency_seconds';
/** One sample per second: the charts' resolution. */
const SAMPLE_MS = 1000;

/** A cumulative histogram bucket: `count` observations at or below `le` seconds. */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The `q` quantile (0..1) of the observations in cumulative `buckets` (sorted by `le`, the last
 * one +Inf), interpolated linearly inside the bucket it falls in, as Prometheus's
 * histogram_quantile does; in the unit of `le`. Null when there are no observations.
 */
export function quantileFromBuckets(buckets: readonly Bucket[], q: number): number | null {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank && b.count > lowerCount) {
      // Past the last finite bound all we know is "above it".
      if (!Number.isFinite(b.le)) return lowerLe;
      return lowerLe + ((b.le - lowerLe) * (rank - lowerCount)) / (b.count - lowerCount);
    }
    lowerLe = b.le;
    lowerCount = b.count;
  }
  return lowerLe;
}

/**
 * The last `historySeconds` of the whole service, one sample a second, for the live view's
 * charts: results sent per second and their latency (read from the end-to-end latency
 * histogram the metrics already keep, so the page and Grafana show the same numbers), busy
 * threads and queue depth. Memory is bounded by the history length.
 */
export class ThroughputHistory {
  readonly #registry: Registry;
  readonly #pool: WorkerPool;
  readonly #capacity: number;
  readonly #samples: LiveSample[] = [];
  #previous: { at: number; buckets: Bucket[] } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #sampling = false;

  constructor(registry: Registry, pool: WorkerPool, historySeconds: number) {
    this.#registry = registry;
    this.#pool = pool;
    this.#capacity = historySeconds;
  }

  /** Starts sampling every second; the timer never keeps the process alive. */
  start(): void {
    if (this.#timer) return;
    void this.#sample();
    this.#timer = setInterval(() => void this.#sample(), SAMPLE_MS).unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Samples, oldest first. */
  history(): LiveSample[] {
    return [...this.#samples];
  }

  /** The newest sample, or an empty one before the first second has passed. */
  latest(): LiveSample {
    return this.#samples[this.#samples.length - 1] ?? this.#empty(Date.now());
  }

  #empty(at: number): LiveSample {
    const stats = this.#pool.stats();
    return { at, resultsPerSecond: 0, latencyP50Ms: null, latencyP99Ms: null, busyThreads: stats.busy, queueDepth: stats.queueDepth };
  }

  async #sample(): Promise<void> {
    // prom-client's get() is async: never let two samples interleave.
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const at = Date.now();
      const buckets = await this.#buckets();
      const previous = this.#previous;
      this.#previous = { at, buckets };
      if (!previous) return;
      const delta = buckets.map((b, i) => ({ le: b.le, count: Math.max(0, b.count - (previous.buckets[i]?.count ?? 0)) }));
      const seconds = Math.max(0.001, (at - previous.at) / 1000);
      const p50 = quantileFromBuckets(delta, 0.5);
      const p99 = quantileFromBuckets(delta, 0.99);
      const sample = this.#empty(at);
      sample.resultsPerSecond = round((delta[delta.length - 1]?.count ?? 0) / seconds);
      sample.latencyP50Ms = p50 === null ? null : round(p50 * 1000);
      sample.latencyP99Ms = p99 === null ? null : round(p99 * 1000);
      this.#samples.push(sample);
      if (this.#samples.length > this.#capacity) this.#samples.shift();
    } finally {
      this.#sampling = false;
    }
  }

  /** The latency histogram's cumulative buckets, summed over pipelines, sorted by bound. */
  async #buckets(): Promise<Bucket[]> {
    const metric = this.#registry.getSingleMetric(LATENCY_METRIC);
    if (!metric) return [];
    const { values } = await metric.get();
    const byLe = new Map<number, number>();
    for (const v of values) {
      if (!('metricName' in v) || !String(v.metricName).endsWith('_bucket')) continue;
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + v.value);
    }
    return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  }
}

/** Three significant decimals are plenty for a chart. */
function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
