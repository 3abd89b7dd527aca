/**
 * Checks one client's stream of results against the protocol's promise: seq 1, 2, 3… in order,
 * none skipped, none twice — across connections too (a resumed stream continues the same count).
 *
 * A seq above the next expected one opens a gap (the skipped seqs are remembered as ranges, so a
 * jump costs one entry, not one per seq). A seq below it is a late arrival when it fills part of a
 * gap (a reorder) and a duplicate otherwise. Gaps are what is still missing when asked.
 */
export class SeqCheck {
  /** Seq expected next (one above the highest received). */
  #next = 1;
  /** Skipped seqs not received since, as inclusive [from, to] ranges in ascending order. */
  #missing: Array<[number, number]> = [];
  #received = 0;
  #duplicates = 0;
  #reorders = 0;

  /** @param after the last seq already accounted for (0: the stream starts at 1). */
  constructor(after = 0) {
    this.#next = after + 1;
  }

  /** Records one received seq. */
  receive(seq: number): void {
    this.#received++;
    if (seq === this.#next) {
      this.#next++;
      return;
    }
    if (seq > this.#next) {
      this.#missing.push([this.#next, seq - 1]);
      this.#next = seq + 1;
      return;
    }
    const i = this.#missing.findIndex(([from, to]) => seq >= from && seq <= to);
    if (i < 0) {
      this.#duplicates++;
      return;
    }
    this.#reorders++;
    const [from, to] = this.#missing[i]!;
    const rest: Array<[number, number]> = [];
    if (from < seq) rest.push([from, seq - 1]);
    if (seq < to) rest.push([seq + 1, to]);
    this.#missing.splice(i, 1, ...rest);
  }

  /** Results received, duplicates included. */
  get received(): number {
    return this.#received;
  }

  /** Highest seq received (or the `after` it started from). */
  get highest(): number {
    return this.#next - 1;
  }

  /** Every seq up to this one has been received: what a client asks to resume after. */
  get contiguous(): number {
    return this.#missing.length > 0 ? this.#missing[0]![0] - 1 : this.#next - 1;
  }

  /** Seqs below the highest received that never arrived. */
  get gaps(): number {
    return this.#missing.reduce((n, [from, to]) => n + to - from + 1, 0);
  }

  /** Seqs received more than once. */
  get duplicates(): number {
    return this.#duplicates;
  }

  /** Seqs that arrived after a higher one (and were not duplicates). */
  get reorders(): number {
    return this.#reorders;
  }
}
