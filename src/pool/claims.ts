/**
 * Claim slots of batched step tasks (pool/messages.ts StepBatchTask), all in one
 * SharedArrayBuffer the pool threads get once at start. A slot: Int32 at 0, the index of the
 * next entry to claim; Float64 at 8, when the entry under way began (epoch ms).
 *
 * This module is the only one that knows that layout: both threads go through a Claims view of
 * the whole buffer, made once, and name a slot by its number. (A view per slot and task cost
 * five typed arrays a task, made on both threads for a 4-byte counter.)
 */
const CLAIM_BYTES = 16;
const INTS_PER_SLOT = CLAIM_BYTES / Int32Array.BYTES_PER_ELEMENT;
const FLOATS_PER_SLOT = CLAIM_BYTES / Float64Array.BYTES_PER_ELEMENT;

/** One thread's view of every claim slot. */
export class Claims {
  readonly #ints: Int32Array;
  readonly #floats: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#ints = new Int32Array(buffer);
    this.#floats = new Float64Array(buffer);
  }

  /** Claims the next entry of `slot`'s task: its index (the task's length or more: none is left). */
  claimNext(slot: number): number {
    return Atomics.add(this.#ints, slot * INTS_PER_SLOT, 1);
  }

  /** How many entries of `slot`'s task were claimed (may run past its length). */
  claimed(slot: number): number {
    return Atomics.load(this.#ints, slot * INTS_PER_SLOT);
  }

  /** Claims every entry left of a task of `count` entries; returns how many were claimed before. */
  claimAll(slot: number, count: number): number {
    return Atomics.exchange(this.#ints, slot * INTS_PER_SLOT, count);
  }

  /** Notes when the entry just claimed from `slot` began, epoch ms. */
  setEntryStartedAt(slot: number, atMs: number): void {
    this.#floats[slot * FLOATS_PER_SLOT + 1] = atMs;
  }

  /** When the entry under way in `slot` began, epoch ms (0: none yet). */
  entryStartedAt(slot: number): number {
    return this.#floats[slot * FLOATS_PER_SLOT + 1]!;
  }

  /** Zeroes `slot` for its next task. */
  clear(slot: number): void {
    Atomics.store(this.#ints, slot * INTS_PER_SLOT, 0);
    this.#floats[slot * FLOATS_PER_SLOT + 1] = 0;
  }
}

/** The main thread's side: the buffer, and which slots are free. */
export class ClaimSlab {
  readonly buffer: SharedArrayBuffer;
  readonly view: Claims;
  readonly #free: number[] = [];

  /** @param capacity tasks in flight at most (one step each at the very least: bound it by the steps that can be in flight). */
  constructor(capacity: number) {
    this.buffer = new SharedArrayBuffer(capacity * CLAIM_BYTES);
    this.view = new Claims(this.buffer);
    for (let slot = capacity - 1; slot >= 0; slot--) this.#free.push(slot);
  }

  /** A zeroed slot, or null when every slot is in use. */
  alloc(): number | null {
    return this.#free.pop() ?? null;
  }

  /** Frees a slot once its task has answered or died (no thread reads it any more). */
  free(slot: number): void {
    this.view.clear(slot);
    this.#free.push(slot);
  }
}
