/**
 * Gathers what is asked for during one event-loop turn and hands it over in one piece at the end
 * of the turn (setImmediate): work asked for together reaches the pool together.
 */
export class TurnQueue<T> {
  #items: T[] = [];
  #scheduled = false;
  readonly #flush: (items: T[]) => void;

  constructor(flush: (items: T[]) => void) {
    this.#flush = flush;
  }

  push(item: T): void {
    this.#items.push(item);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const items = this.#items;
      this.#items = [];
      this.#flush(items);
    });
  }

  /** Takes `item` back if it is still waiting; true when it was. */
  remove(item: T): boolean {
    const i = this.#items.indexOf(item);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    return true;
  }

  get length(): number {
    return this.#items.length;
  }
}
