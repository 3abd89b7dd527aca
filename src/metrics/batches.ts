import { Counter, type Registry } from 'prom-client';
import type { BatchObserver } from '../pool/step-batcher.js';
import { METRIC_PREFIX } from './buckets.js';
import { TallyHistogram } from './tally.js';

/** Buckets for steps per task: 1 (alone) up to STEP_BATCH_MAX's default and beyond. */
const STEPS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** How steps of many sessions share pool tasks (pool/step-batcher.ts). */
export function batchMetrics(registry: Registry): BatchObserver {
  // Observed for every task (hundreds a second): tallied in place, handed to prom-client when scraped.
  const steps = new TallyHistogram(registry, METRIC_PREFIX + 'step_batch_steps', 'Steps (of different sessions) sent to a pool thread in one task.', STEPS_BUCKETS, []);
  const all = steps.series();
  const takenBack = new Counter({
    name: METRIC_PREFIX + 'step_batch_taken_back_total',
    help: 'Steps taken back from a task whose current step ran past STEP_BATCH_STALL_MS, or whose thread ended, and sent again.',
    labelNames: ['why'] as const,
    registers: [registry],
  });
  takenBack.inc({ why: 'stalled' }, 0);
  takenBack.inc({ why: 'thread_ended' }, 0);
  const timedOut = new Counter({
    name: METRIC_PREFIX + 'step_timeouts_total',
    help: 'Calls of a pipeline step still running after STEP_TIMEOUT_MS: each was ended (its thread terminated) and failed its session.',
    registers: [registry],
  });
  return {
    batchSent: (n) => steps.observe(all, n),
    takenBack: (n, why) => takenBack.inc({ why }, n),
    timedOut: () => timedOut.inc(),
  };
}
