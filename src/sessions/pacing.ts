/**
 * How a step producer is paced, and when its consumer may ride along: shared by the main thread
 * (sessions/sides.ts) and a step thread keeping residents (pool/residents-thread.ts).
 */
import { FLAG, type SessionFlags } from '../pool/flags.js';

/**
 * When a step producer's next step is due. A producer asks to wait `delayMs` between steps; the
 * wait counts from when its last step was due, not from its answer, so the wait for a thread, the
 * round trip and the timer wheel's tick do not stretch its period (a 1 Hz sensor writes a chunk a
 * second). Only lateness up to `slackMs` (PRODUCER_RATE_SLACK_MS) is absorbed: past it, the period
 * stretches by the rest, so an overloaded service slows its producers instead of queueing work.
 *
 * @param dueAt when the step just answered was due, ms
 * @param answeredAt when its answer arrived, ms
 * @returns when the next step is due, ms (at or before `answeredAt`: at once)
 */
export function nextStepDue(dueAt: number, answeredAt: number, delayMs: number, slackMs: number): number {
  const late = Math.max(0, answeredAt - dueAt);
  return answeredAt + Math.max(0, delayMs) - Math.min(late, slackMs);
}

/** When a step consumer counts as quick enough to be lent (STEP_LEND_CONSUMER_MAX_MS, STEP_LEND_CONSUMER_SLOW_RUNS, STEP_LEND_CONSUMER_RUN_MAX_MS). */
export interface LendLimits {
  /** A run is slow when the consumer's own calls took more than this per chunk, ms. */
  maxMsPerChunk: number;
  /** Runs in a row that must be slow before the consumer is judged slow. */
  slowRuns: number;
  /** One run whose own calls took more than this in all, ms, judges the consumer slow at once. */
  runMaxMs: number;
}

export const DEFAULT_LEND_LIMITS: LendLimits = Object.freeze({ maxMsPerChunk: 2, slowRuns: 3, runMaxMs: 50 });

/**
 * Notes one run of a step consumer, by the thread that ran it (at most one at a time, wherever it
 * runs: lent to its producer's task, resident or in a task of its own). A step consumer is lent
 * to its producer's task only while it is quick, so a slow consumer never delays the producer (or
 * a step thread's other residents): it then runs in tasks of its own, in parallel. Quick is judged
 * by the consumer's own calls, not the service's work around them (reading the chunk, the append,
 * the socket write), and slow only after `slowRuns` slow runs in a row: a thread that lost its core
 * for a few ms in the middle of one run (two cores shared with the rest of the machine) says
 * nothing of its consumer, and judging by that one run handed a quick resident back to the main
 * thread's path again and again (docs/PERFORMANCE.md, "A consumer judged slow by one run"). A run
 * longer than `runMaxMs` in all is no lost core: it judges the consumer slow at once, so a consumer
 * slow only now and then (one run in two) does not stay lent through its slow runs.
 *
 * FLAG.CONSUMER_SLOW_RUNS holds the slow runs in a row while fewer than `slowRuns`, and -1 once
 * judged slow; one quick run sets it back to 0.
 */
export function noteConsumerRun(flags: SessionFlags, ownMs: number, chunks: number, limits: LendLimits): void {
  if (chunks === 0) return;
  const ints = flags.ints;
  if (ownMs > limits.runMaxMs) {
    Atomics.store(ints, FLAG.CONSUMER_SLOW_RUNS, -1);
    return;
  }
  if (ownMs / chunks <= limits.maxMsPerChunk) {
    Atomics.store(ints, FLAG.CONSUMER_SLOW_RUNS, 0);
    return;
  }
  const runs = Atomics.load(ints, FLAG.CONSUMER_SLOW_RUNS);
  if (runs >= 0) Atomics.store(ints, FLAG.CONSUMER_SLOW_RUNS, runs + 1 >= limits.slowRuns ? -1 : runs + 1);
}

/**
 * Whether the session's step consumer may be lent to its producer's task: not judged slow (see
 * noteConsumerRun). Both threads judge by it: the main thread before lending (sessions/sides.ts),
 * a step thread before keeping a resident (pool/residents-thread.ts).
 */
export function consumerLendable(flags: SessionFlags): boolean {
  return Atomics.load(flags.ints, FLAG.CONSUMER_SLOW_RUNS) >= 0;
}
