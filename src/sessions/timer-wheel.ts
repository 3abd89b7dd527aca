/**
 * One timer for every step side's wait between steps (the seed's 1.5 s pause): 10,000 sessions
 * at 1 Hz cost one armed setTimeout, not 10,000. Waits are grouped by the tick they end in
 * (STEP_TIMER_TICK_MS; a wait ends at the first tick boundary at or after its due time, so it
 * never ends early and at most one tick late); the earliest group arms the one timer, and
 * everything due runs in the same turn, so the steps it starts reach the pool together
 * (pool/step-batcher.ts batches them): a longer tick means fewer, fuller tasks.
 */
export interface WheelTimer {
  /** Null once it ran or was cancelled. */
  fn: (() => void) | null;
}

export class TimerWheel {
  readonly #buckets = new Map<number, WheelTimer[]>();
  /** Due times (ms, integer) of the buckets, as a binary min-heap. */
  readonly #heap: number[] = [];
  #timer: NodeJS.Timeout | null = null;
  #armedFor = Infinity;
  #closed = false;
  readonly #tickMs: number;

  /** @param tickMs the granularity of every wait, ms (default 1). */
  constructor(tickMs = 1) {
    this.#tickMs = Math.max(1, tickMs);
  }

  /** Runs `fn` once, `delayMs` from now (rounded up to the tick). */
  schedule(fn: () => void, delayMs: number): WheelTimer {
    const timer: WheelTimer = { fn };
    const tick = this.#tickMs;
    const due = Math.ceil((performance.now() + Math.max(0, delayMs)) / tick) * tick;
    const bucket = this.#buckets.get(due);
    if (bucket) bucket.push(timer);
    else {
      this.#buckets.set(due, [timer]);
      this.#push(due);
    }
    this.#arm();
    return timer;
  }

  cancel(timer: WheelTimer): void {
    timer.fn = null;
  }

  /** Drops every wait and the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#buckets.clear();
    this.#heap.length = 0;
  }

  #arm(): void {
    const next = this.#heap[0];
    if (next === undefined || this.#closed || next >= this.#armedFor) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#armedFor = next;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, next - performance.now()));
  }

  #fire(): void {
    this.#timer = null;
    this.#armedFor = Infinity;
    const now = performance.now();
    while (this.#heap.length > 0 && this.#heap[0]! <= now) {
      const due = this.#pop();
      const bucket = this.#buckets.get(due) ?? [];
      this.#buckets.delete(due);
      for (const t of bucket) {
        const fn = t.fn;
        t.fn = null;
        fn?.();
      }
    }
    this.#arm();
  }

  #push(v: number): void {
    const h = this.#heap;
    h.push(v);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
