import fs from 'node:fs';
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './buckets.js';
import { EVENT_LOOP_LAG_METRICS, eventLoopMetrics } from './event-loop.js';

/**
 * prom-client's defaults that `promtool check metrics` rejects: gauges whose names end in
 * `_total`. Each has a twin without the suffix, broken down by type, whose sum is the same.
 */
const NON_COUNTERS_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const OPEN_FDS = 'process_open_fds';
/** The longest interval a loop-delay sampler takes (int32 ms, some 24 days): prom-client's own never fires. */
const PARKED_MS = 2 ** 31 - 1;
const FD_DIR = '/proc/self/fd';

/**
 * Process and Node.js metrics (CPU, memory, file descriptors, heap, GC, event-loop lag) from
 * prom-client's defaults, under the service prefix; the open descriptors counted by openFds(),
 * and the event loop's lag sampled every `loopDelayResolutionMs` (event-loop.ts). prom-client
 * always starts its own loop-delay sampler: it is given the longest interval there is, and its
 * gauges make way for event-loop.ts's.
 */
export function processMetrics(registry: Registry, loopDelayResolutionMs: number): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: PARKED_MS });
  for (const name of [...NON_COUNTERS_NAMED_TOTAL, ...EVENT_LOOP_LAG_METRICS]) registry.removeSingleMetric(METRIC_PREFIX + name);
  eventLoopMetrics(registry, loopDelayResolutionMs);
  if (!registry.getSingleMetric(METRIC_PREFIX + OPEN_FDS)) return; // not Linux: prom-client has none either
  registry.removeSingleMetric(METRIC_PREFIX + OPEN_FDS);
  new Gauge({
    name: METRIC_PREFIX + OPEN_FDS,
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      const n = await openFds();
      if (n !== null) this.set(n);
    },
  });
}

/**
 * How many descriptors the process has open, without listing them on the main thread.
 * prom-client's own gauge lists /proc/self/fd with readdirSync at every scrape: about 1 µs a
 * descriptor, so a crowd of 10,000 sessions (their sockets and held log files, some 19,000)
 * held the main thread some 16–20 ms every scrape, every session's results waiting behind it
 * (docs/PERFORMANCE.md, "A scrape held the crowd"). Linux 6.2 and later give the count as the
 * folder's size, at the cost of one stat; older kernels give 0, and the folder is listed by
 * libuv's thread pool instead. Null when neither works (the gauge keeps its last value).
 */
export async function openFds(): Promise<number | null> {
  try {
    const size = (await fs.promises.stat(FD_DIR)).size;
    if (size > 0) return size;
    // The listing's own descriptor is counted in it, and closed by now.
    return (await fs.promises.readdir(FD_DIR)).length - 1;
  } catch {
    return null;
  }
}
