import { collectDefaultMetrics, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './buckets.js';

/**
 * prom-client's defaults that `promtool check metrics` rejects: gauges whose names end in
 * `_total`. Each has a twin without the suffix, broken down by type, whose sum is the same.
 */
const NON_COUNTERS_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * Process and Node.js metrics (CPU, memory, file descriptors, heap, GC, event-loop lag) from
 * prom-client's defaults, under the service prefix.
 */
export function processMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of NON_COUNTERS_NAMED_TOTAL) registry.removeSingleMetric(METRIC_PREFIX + name);
}
