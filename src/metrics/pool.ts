import { Gauge, type Registry } from 'prom-client';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { SessionObserver } from '../sessions/session.js';
import { LATENCY_BUCKETS_SECONDS, METRIC_PREFIX } from './buckets.js';
import { TallyHistogram, totalCounter } from './tally.js';

const SIDES = ['producer', 'consumer'] as const;
const SHAPES = ['step', 'loop'] as const;

/**
 * Threads of both Piscina pools, read from `pool.stats()` at scrape time, and the wait and run
 * time of every task by side, from the times the worker stamps on its results.
 */
export function poolMetrics(registry: Registry, deps: { pool: WorkerPool }): Pick<SessionObserver, 'taskTimed'> {
  const { pool } = deps;
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: METRIC_PREFIX + name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('pool_threads', 'Threads alive in the step and loop pools.', () => pool.stats().threads);
  gauge('pool_busy_threads', 'Threads running a task (a step, or a loop for its whole session).', () => pool.stats().busy);
  gauge('pool_idle_threads', 'Threads alive and waiting for a task.', () => pool.stats().idle);
  gauge('pool_loop_threads', 'Threads held by loop-shaped sides for their whole session.', () => pool.stats().loopThreads);
  gauge('pool_max_threads', 'Most threads the step pool grows to (POOL_MAX_THREADS).', () => pool.stats().maxThreads);
  gauge('pool_active_threads', 'Step threads that take work while none is held (POOL_ACTIVE_THREADS); the rest up to the maximum are spares.', () => pool.stats().activeThreads);
  gauge('pool_held_threads', 'Step threads held now (a stuck resident, a job past STEP_BATCH_STALL_MS): a spare takes each one\'s place.', () => pool.stats().heldThreads);
  gauge('pool_loop_max_threads', 'Most loop-shaped sides at once (LOOP_MAX_THREADS).', () => pool.stats().loopMaxThreads);
  gauge('pool_queued_tasks', 'Step tasks waiting for a free thread.', () => pool.stats().queueDepth);
  gauge('pool_utilization_ratio', "Share of the step threads' time spent running batches since start (0..1).", () => pool.stats().utilization);

  totalCounter(registry, METRIC_PREFIX + 'pool_tasks_completed_total', 'Tasks the pools have completed.', () => pool.stats().completed);

  // Resident steps (STEP_RESIDENTS, pool/residents.ts): sessions whose steps a step thread keeps.
  gauge('step_residents', 'Sessions whose steps a step thread keeps and runs on its own timer (STEP_RESIDENTS).', () => pool.residentStats().residents);
  gauge('step_producer_load', "Step producers' steps a second, resident or not (STEP_RESIDENTS): none is made resident above STEP_RESIDENTS_MAX_LOAD per active step thread.", () => pool.residentStats().loadPerS);
  totalCounter(registry, METRIC_PREFIX + 'step_residents_adopted_total', 'Residencies begun: a session handed to a step thread.', () => pool.residentStats().adopted);
  totalCounter(registry, METRIC_PREFIX + 'step_residents_taken_back_total', "Residents taken back because their answer was overdue while their thread was held.", () => pool.residentStats().takenBack);
  totalCounter(registry, METRIC_PREFIX + 'step_residents_rolled_back_total', 'Residents rolled back to their last answer because their thread went.', () => pool.residentStats().rolledBack);
  totalCounter(registry, METRIC_PREFIX + 'step_residents_quiet_steps_total', 'Resident steps that needed no answer: their step thread published them and sent their results (STEP_QUIET_STATE_BYTES).', () => pool.residentStats().quietSteps);

  // Observed for every step on the main thread: tallied (tally.ts), one series key per side and shape.
  const histogram = (name: string, help: string) => new TallyHistogram(registry, METRIC_PREFIX + name, help, LATENCY_BUCKETS_SECONDS, ['side', 'shape']);
  const wait = histogram('pool_task_wait_seconds', 'Time a task waited for a thread, from submission to the start of its run, by side and shape.');
  const run = histogram('pool_task_run_seconds', 'Time a task ran on its thread, by side and shape (a loop runs for its whole session).');
  const keys = {} as Record<(typeof SIDES)[number], Record<(typeof SHAPES)[number], string>>;
  for (const side of SIDES) {
    keys[side] = {} as Record<(typeof SHAPES)[number], string>;
    for (const shape of SHAPES) {
      keys[side][shape] = wait.series(side, shape);
      run.series(side, shape);
    }
  }

  return {
    taskTimed(_session, side, shape, waitMs, runMs) {
      const key = keys[side][shape];
      wait.observe(key, Math.max(0, waitMs) / 1000);
      run.observe(key, Math.max(0, runMs) / 1000);
    },
  };
}
