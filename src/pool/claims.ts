/**
 * Claim slots of batched step tasks (pool/messages.ts StepBatchTask), all in one
 * SharedArrayBuffer the pool threads get once at start. A slot: Int32 at 0, the index of the
 * next entry to claim; Float64 at 8, when the entry under way began (epoch ms).
 */
export const CLAIM_BYTES = 16;

export class ClaimSlab {
  readonly buffer: SharedArrayBuffer;
  readonly #free: number[] = [];

  /** @param capacity tasks in flight at most (one step each at the very least: bound it by the steps that can be in flight). */
  constructor(capacity: number) {
    this.buffer = new SharedArrayBuffer(capacity * CLAIM_BYTES);
    for (let slot = capacity - 1; slot >= 0; slot--) this.#free.push(slot);
  }

  /** A zeroed slot, or null when every slot is in use. */
  alloc(): { slot: number; claim: Int32Array; entryStartedAt: Float64Array } | null {
    const slot = this.#free.pop();
    if (slot === undefined) return null;
    return {
      slot,
      claim: new Int32Array(this.buffer, slot * CLAIM_BYTES, 1),
      entryStartedAt: new Float64Array(this.buffer, slot * CLAIM_BYTES + 8, 1),
    };
  }

  /** Frees a slot once its task has answered or died (no thread reads it any more). */
  free(slot: number): void {
    new Uint8Array(this.buffer, slot * CLAIM_BYTES, CLAIM_BYTES).fill(0);
    this.#free.push(slot);
  }
}
