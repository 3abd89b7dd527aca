/**
 * How a step producer is paced, and when its consumer may ride along: shared by the main thread
 * (sessions/sides.ts) and a step thread keeping residents (pool/residents-thread.ts).
 */
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

/**
 * A step consumer is lent to its producer's task only while its last run took at most this long per chunk,
 * so a slow consumer never delays the producer: it then runs in tasks of its own, in parallel.
 * Both threads judge by it: the main thread before lending (sessions/sides.ts), a step thread
 * before keeping a resident (pool/residents-thread.ts).
 */
export const LEND_CONSUMER_MAX_MS = 2;
