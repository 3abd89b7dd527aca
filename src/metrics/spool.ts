import { Gauge, type Registry } from 'prom-client';
import type { HeldFilesBudget } from '../spool/held-files.js';
import { METRIC_PREFIX } from './buckets.js';
import { totalCounter } from './tally.js';

/** The log descriptors held for sessions' steps (spool/held-files.ts), read at scrape time. */
export function spoolMetrics(registry: Registry, deps: { heldFiles: HeldFilesBudget }): void {
  const { heldFiles } = deps;
  new Gauge({
    name: METRIC_PREFIX + 'spool_held_files',
    help: 'Log segment files held open for sessions\' steps (SPOOL_HELD_FILES_MAX, OPEN_FILES_LIMIT).',
    registers: [registry],
    collect() {
      this.set(heldFiles.held);
    },
  });
  totalCounter(
    registry,
    METRIC_PREFIX + 'spool_held_files_given_back_total',
    'Held log files closed so that new sockets had room under OPEN_FILES_LIMIT (their sessions\' steps open their files from then on).',
    () => heldFiles.givenBack,
  );
}
