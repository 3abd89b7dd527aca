import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './buckets.js';

/** prom-client's event-loop gauges, which these replace under the same names. */
export const EVENT_LOOP_LAG_METRICS = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((s) => `nodejs_eventloop_lag_${s}_seconds`).concat('nodejs_eventloop_lag_seconds');

/**
 * The event loop's lag, sampled every `resolutionMs` (METRICS_LOOP_DELAY_RESOLUTION_MS) and
 * reported at each scrape for the time since the last one, under prom-client's names.
 *
 * prom-client's own gauges sample every 10 ms: the main thread then wakes 100 times a second with
 * nothing to do, which cost steady's main thread some 30 % of its CPU per result (side by
 * side, docs/PERFORMANCE.md, "The loop-delay sampler woke the main thread"). Node's histogram
 * records each whole interval between samples, so prom-client reported an idle loop's lag as
 * 10 ms; these subtract the interval and report the delay beyond it (0 for an idle loop, whatever
 * the resolution). `nodejs_eventloop_lag_seconds` is, as before, the time a scrape's immediate
 * waited.
 */
export function eventLoopMetrics(registry: Registry, resolutionMs: number): void {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  const lag = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e9 - resolutionMs / 1000) : 0);
  // Registered first: a scrape reads the gauges in that order, and this one's collect sets the others.
  new Gauge({
    name: `${METRIC_PREFIX}nodejs_eventloop_lag_seconds`,
    help: 'Lag of event loop in seconds: how long an immediate queued at the scrape waited.',
    registers: [registry],
    collect() {
      const queued = process.hrtime.bigint();
      setImmediate(() => this.set(Number(process.hrtime.bigint() - queued) / 1e9));
      // Nothing sampled yet (a scrape sooner than the resolution after the last): the last values stay.
      if (histogram.count === 0) return;
      min.set(lag(histogram.min));
      max.set(lag(histogram.max));
      mean.set(lag(histogram.mean));
      stddev.set(Number.isFinite(histogram.stddev) ? histogram.stddev / 1e9 : 0);
      p50.set(lag(histogram.percentile(50)));
      p90.set(lag(histogram.percentile(90)));
      p99.set(lag(histogram.percentile(99)));
      histogram.reset();
    },
  });
  const gauge = (suffix: string, help: string) => new Gauge({ name: `${METRIC_PREFIX}nodejs_eventloop_lag_${suffix}seconds`, help, registers: [registry] });
  const min = gauge('min_', 'The least event-loop delay beyond the sampling interval since the last scrape.');
  const max = gauge('max_', 'The greatest event-loop delay beyond the sampling interval since the last scrape.');
  const mean = gauge('mean_', 'The mean event-loop delay beyond the sampling interval since the last scrape.');
  const stddev = gauge('stddev_', 'The standard deviation of the event-loop delays since the last scrape.');
  const p50 = gauge('p50_', 'The median event-loop delay beyond the sampling interval since the last scrape.');
  const p90 = gauge('p90_', 'The 90th percentile of the event-loop delay beyond the sampling interval since the last scrape.');
  const p99 = gauge('p99_', 'The 99th percentile of the event-loop delay beyond the sampling interval since the last scrape.');
}
