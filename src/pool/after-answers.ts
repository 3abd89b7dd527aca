/**
 * When a watchdog may judge the step threads' answers: only once the main thread has read those
 * that were on their way. A thread's answer is a message, read in the event loop's poll phase. A
 * timer runs before that phase, so a check made in a timer after a long turn finds the answers
 * posted during the turn unread. An immediate runs after the phase, but that is not enough either:
 * when the long turn is itself in the poll phase (a client's frames, say, after the timer asked for
 * the check), the answers posted during it wait for the next phase, and the immediate runs first.
 *
 * So the check runs in an immediate whose turn was short: asked for at `askedAt`, it runs only if
 * the loop reached the check phase within `freshMs`; otherwise it is asked for again, and then
 * follows the next poll phase, which reads what came during the long turn. An answer it judges
 * may then be at most about `freshMs` old (the watchdogs use a quarter of STEP_BATCH_STALL_MS).
 * A main thread busy in every turn puts the check off as long as that lasts: while it cannot read
 * the answers, it cannot tell a stalled thread from its own delay.
 */
export function afterAnswersRead(check: () => void, freshMs: number): void {
  let askedAt = performance.now();
  const inTurn = (): void => {
    const now = performance.now();
    if (now - askedAt > freshMs) {
      askedAt = now;
      setImmediate(inTurn);
      return;
    }
    check();
  };
  setImmediate(inTurn);
}

/** How fresh the answers a watchdog judges must be: a quarter of the stall, at least 1 ms. */
export function freshMsFor(stallMs: number): number {
  return Math.max(1, stallMs / 4);
}
