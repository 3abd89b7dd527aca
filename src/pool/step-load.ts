/**
 * The step producers' load, and what it allows residents (pool/residents.ts). Residents pay where
 * the service takes few steps to a tick (steady: 667 a second) and cost the tail and the CPU where
 * it takes many (the crowd: 10,000), because a resident's step runs on its thread's own tick while
 * the main thread works beside it: docs/PERFORMANCE.md, "Fewer residents, a lower crowd tail".
 *
 * The load is counted from the steps taken in, resident or not (`taken`), not from the waits they
 * ask for, which a producer on the wall clock's multiples makes short now and then. It is read
 * once a sample closes (`close`, every LOAD_SAMPLE_MS), so a step pays one increment and the
 * answers read two booleans.
 *
 * - At or under the limit, producers may be made resident (`welcome`), once the load has stayed
 *   there for `holdMs` (STEP_RESIDENTS_LOAD_HOLD_MS) since it was last above it.
 * - Past it by a quarter (CROWDED_ABOVE), residents go back to the main thread's path (`crowded`).
 * - Between the two, neither: a load near the limit does not make producers come and go.
 *
 * The hold is for a load that swings: 10,000 sessions starting read 1,500–5,500 a second in
 * half-second samples for the 15 s of their STARTs (the main thread's turns take the STARTs, and
 * the steps' answers wait), and without it each dip made thousands resident, each crowded sample
 * sent them back: four waves, 8,064 residencies begun and ended, before the load held at 10,000.
 */

/** How long the load is counted over before it is read, ms. */
export const LOAD_SAMPLE_MS = 500;
/** Past the limit by this factor, the load is crowded. */
export const CROWDED_ABOVE = 1.25;

export class StepLoad {
  /** Steps a second at or under which residents are welcome (Infinity: no limit). */
  readonly #limitPerS: number;
  readonly #holdMs: number;
  #steps = 0;
  /** When a sample last closed above the limit (-Infinity: never). */
  #aboveAt = -Infinity;
  #from: number;
  #perS = 0;
  #welcome = true;
  #crowded = false;

  constructor(limitPerS: number, holdMs: number, now: number) {
    this.#limitPerS = limitPerS;
    this.#holdMs = holdMs;
    this.#from = now;
  }

  /** A step producer's steps were taken in (`n`: a catch-up's quiet steps, pool/quiet-steps.ts). */
  taken(n = 1): void {
    this.#steps += n;
  }

  /** Closes the sample begun at the last close: the load becomes its steps a second. */
  close(now: number): void {
    const elapsed = now - this.#from;
    if (elapsed <= 0) return;
    this.#perS = (this.#steps * 1000) / elapsed;
    this.#steps = 0;
    this.#from = now;
    if (this.#perS > this.#limitPerS) this.#aboveAt = now;
    this.#welcome = this.#perS <= this.#limitPerS && now - this.#aboveAt >= this.#holdMs;
    this.#crowded = this.#perS > this.#limitPerS * CROWDED_ABOVE;
  }

  /** Steps a second over the last sample closed. */
  get perS(): number {
    return this.#perS;
  }

  /** A producer may be made resident. */
  get welcome(): boolean {
    return this.#welcome;
  }

  /** Residents go back to the main thread's path. */
  get crowded(): boolean {
    return this.#crowded;
  }
}
