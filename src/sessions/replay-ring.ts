import type { DeliveredResult } from './session.js';

/**
 * The last `size` results a session sent, for RESUME: a client that lost its connection names
 * the last seq it received and gets every later one again. A fixed ring, so memory per session
 * stays bounded however long it runs.
 */
export class ReplayRing {
  readonly #slots: Array<DeliveredResult | undefined>;

  /** @param size results kept (RESUME_REPLAY_RESULTS; 0 keeps none). */
  constructor(size: number) {
    this.#slots = new Array<DeliveredResult | undefined>(Math.max(0, size));
  }

  get size(): number {
    return this.#slots.length;
  }

  record(result: DeliveredResult): void {
    if (this.#slots.length > 0) this.#slots[result.seq % this.#slots.length] = result;
  }

  /** Results `from`…`to` in order, or null when any of them is no longer kept. */
  range(from: number, to: number): DeliveredResult[] | null {
    const out: DeliveredResult[] = [];
    for (let seq = from; seq <= to; seq++) {
      const r = this.#slots.length > 0 ? this.#slots[seq % this.#slots.length] : undefined;
      if (r?.seq !== seq) return null;
      out.push(r);
    }
    return out;
  }

  clear(): void {
    this.#slots.fill(undefined);
  }
}
