import fs from 'node:fs';
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './buckets.js';

/**
 * prom-client's defaults that `promtool check metrics` rejects: gauges whose names end in
 * `_total`. Each has a twin without the suffix, broken down by type, whose sum is the same.
 */
const NON_COUNTERS_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const OPEN_FDS = 'process_open_fds';
const FD_DIR = '/proc/self/fd';

/**
 * Process and Node.js metrics (CPU, memory, file descriptors, heap, GC, event-loop lag) from
 * prom-client's defaults, under the service prefix; the open descriptors counted by openFds().
 */
export function processMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of NON_COUNTERS_NAMED_TOTAL) registry.removeSingleMetric(METRIC_PREFIX + name);
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
