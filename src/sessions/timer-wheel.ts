/**
 * One timer for every step side's wait between steps (the seed's 1.5 s pause): 10,000 sessions
 * at 1 Hz cost one armed setTimeout, not 10,000. Waits are grouped by the tick they end in; the
 * earliest group arms the one timer, and everything due runs in the same turn, so the steps it
 * starts reach the pool together (pool/step-batcher.ts batches them): a coarser tick means
 * fewer, fuller tasks, and each task costs both threads a wake-up whatever it carries.
 *
 * A wait ends at the first boundary of its granularity at or after its due time, so it never ends
 * early. The granularity grows with the wait, as the Linux kernel's timer wheel does: a short
 * wait keeps STEP_TIMER_TICK_MS, a longer one may end up to STEP_TIMER_SLACK_PERCENT of its
 * length late (never more than STEP_TIMER_MAX_SLACK_MS), in steps of the tick doubled, so the
 * boundaries of every granularity are also boundaries of the finer ones and waits of different
 * lengths still share their groups. A 1.5 s wait with 5 ms, 2 % and 20 ms ends on a 20 ms
 * boundary; a 100 ms one on a 5 ms boundary. Off by default (0 %): a fuller group's results
 * leave in a burst, which raised steady's latency more than the CPU it saved was worth
 * (docs/PERFORMANCE.md, "Comparing two builds side by side"). A step producer keeps its rate
 * whatever the lateness (sessions/pacing.ts).
 *
 * How the one timer is armed. While groups fall due in nearly every tick (a busy service), an
 * interval of one tick drives the wheel: Node re-arms an interval in place, where a timeout armed
 * for each group costs a timer object and a timer list of its own duration, made and dropped
 * every tick. When groups are further apart (coarser groups, or few sessions), one timeout is
 * armed for the earliest group, so a wake-up runs a group rather than finding nothing every tick.
 * A timeout is armed in whole milliseconds and one more: Node counts the loop's clock in whole
 * (and slightly stale) milliseconds, so a timeout armed for exactly the time left often fired just
 * before the group was due, found nothing and armed again, a second wake-up per group. Either way
 * a group runs at the first firing at or after its due time, never before. The interval's
 * firings fall anywhere within a tick, so on a busy wheel a group runs up to a tick after its
 * boundary (half a tick on average, against about a millisecond for a timeout); a step producer's
 * rate absorbs it (PRODUCER_RATE_SLACK_MS).
 */
export interface WheelTimer {
  /** Null once it ran or was cancelled. */
  fn: (() => void) | null;
  /**
   * The group it waits in (set by the wheel). A timer scheduled again while an older group still
   * lists it runs only with its latest group.
   */
  due: number;
}

/** How coarse the waits may be (config.ts names the variables). */
export interface WheelGranularity {
  /** The finest granularity, ms (STEP_TIMER_TICK_MS). */
  tickMs: number;
  /** A wait may end up to this share of its length late, in percent (STEP_TIMER_SLACK_PERCENT). */
  slackPercent: number;
  /** But never more than this late, ms (STEP_TIMER_MAX_SLACK_MS). */
  maxSlackMs: number;
}

/** The granularity a wait of `delayMs` ends on, ms: the tick doubled as often as its slack allows. */
export function waitGranularity(delayMs: number, g: WheelGranularity): number {
  const tick = Math.max(1, g.tickMs);
  const allowed = Math.min(g.maxSlackMs, (Math.max(0, delayMs) * g.slackPercent) / 100);
  let granularity = tick;
  while (granularity * 2 <= allowed) granularity *= 2;
  return granularity;
}

/** When a wait due at `dueAt` (ms) ends: the first boundary of `granularityMs` at or after it. */
export function waitEnd(dueAt: number, granularityMs: number): number {
  return Math.ceil(dueAt / granularityMs) * granularityMs;
}

/**
 * The wheel starts its interval when the earliest group is due within a tick (groups in nearly
 * every tick), and stops it only when that group is further than INTERVAL_STOP_TICKS away, so
 * that one tick left empty now and then does not flip it to a timeout and back. Groups further
 * apart (few sessions, or waits on 20 ms boundaries with STEP_TIMER_SLACK_PERCENT: four ticks)
 * get a timeout each: one wake-up a group, not one a tick.
 */
const INTERVAL_START_TICKS = 1;
const INTERVAL_STOP_TICKS = 2;

/**
 * The waits that end at one boundary. A group lives as long as its waits (a whole step period),
 * long enough for the garbage collector to copy it and then promote it, so an emptied group is
 * kept and given to a new boundary: its array keeps its room (emptying an array by its length
 * gives its room back, and every push after would grow a new one) and its slots are cleared as
 * they run, so a spare group holds no timer, and no session through it.
 */
interface Group {
  timers: Array<WheelTimer | null>;
  size: number;
}

/**
 * Emptied groups kept for reuse, at most. More are alive at once only with waits of many
 * different ends (many sessions on many boundaries); beyond it an emptied group is dropped.
 */
const SPARE_GROUPS_MAX = 1024;

export class TimerWheel {
  readonly #buckets = new Map<number, Group>();
  readonly #spare: Group[] = [];
  /** Due times (ms, integer) of the buckets, as a binary min-heap. */
  readonly #heap: number[] = [];
  /** The timeout armed for a far group (#armedFor), or null. */
  #timer: NodeJS.Timeout | null = null;
  #armedFor = Infinity;
  /** The one-tick interval that drives the wheel while a group is near, or null. */
  #interval: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #granularity: WheelGranularity;
  readonly #tickMs: number;

  /** @param granularity how coarse waits may be (default: every wait on a 1 ms tick). */
  constructor(granularity: WheelGranularity = { tickMs: 1, slackPercent: 0, maxSlackMs: 0 }) {
    this.#granularity = granularity;
    this.#tickMs = Math.max(1, granularity.tickMs);
  }

  /**
   * Runs `fn` once, `delayMs` from now (rounded up to the wait's granularity). `reuse`, a timer of
   * the caller's that is not waiting (it ran or was cancelled), is scheduled instead of a new one:
   * a step side waits between every two steps, and a timer object made for each wait lives as long
   * as the wait, long enough for the garbage collector to copy it twice (docs/PERFORMANCE.md).
   * `granularity`, when given, is this wait's in place of the wheel's (its tick stays the wheel's).
   */
  schedule(fn: () => void, delayMs: number, reuse?: WheelTimer, granularity?: WheelGranularity): WheelTimer {
    const due = waitEnd(performance.now() + Math.max(0, delayMs), waitGranularity(delayMs, granularity ?? this.#granularity));
    const timer = reuse ?? { fn, due };
    timer.fn = fn;
    timer.due = due;
    let group = this.#buckets.get(due);
    if (!group) {
      group = this.#spare.pop() ?? { timers: [], size: 0 };
      this.#buckets.set(due, group);
      this.#push(due);
    }
    if (group.size < group.timers.length) group.timers[group.size] = timer;
    else group.timers.push(timer);
    group.size++;
    // A new wait never makes the earliest group later: a running interval, or a timeout armed for
    // a group no later than this one, already covers it (and spares a clock read per wait).
    if (this.#interval === null && due < this.#armedFor) this.#arm();
    return timer;
  }

  cancel(timer: WheelTimer): void {
    timer.fn = null;
  }

  /** Drops every wait and the timer. */
  close(): void {
    this.#closed = true;
    this.#disarm();
    this.#stopInterval();
    this.#buckets.clear();
    this.#spare.length = 0;
    this.#heap.length = 0;
  }

  /** Makes sure something fires for the earliest group: the interval while it is near, else a timeout. */
  #arm(): void {
    const next = this.#heap[0];
    if (next === undefined || this.#closed) {
      this.#stopInterval();
      return;
    }
    const left = next - performance.now();
    if (left <= (this.#interval ? INTERVAL_STOP_TICKS : INTERVAL_START_TICKS) * this.#tickMs) {
      this.#disarm();
      this.#interval ??= setInterval(() => this.#fire(), this.#tickMs);
      return;
    }
    this.#stopInterval();
    if (next >= this.#armedFor) return;
    this.#disarm();
    this.#armedFor = next;
    this.#timer = setTimeout(() => this.#fire(), Math.ceil(left) + 1);
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedFor = Infinity;
  }

  #stopInterval(): void {
    if (this.#interval) clearInterval(this.#interval);
    this.#interval = null;
  }

  #fire(): void {
    this.#timer = null;
    this.#armedFor = Infinity;
    const now = performance.now();
    while (this.#heap.length > 0 && this.#heap[0]! <= now) {
      const due = this.#pop();
      const group = this.#buckets.get(due)!;
      this.#buckets.delete(due);
      // A callback may schedule more waits, never in this group (it is due, and no longer listed).
      for (let i = 0; i < group.size; i++) {
        const t = group.timers[i]!;
        group.timers[i] = null;
        if (t.due !== due) continue; // scheduled again since: it runs with its later group
        const fn = t.fn;
        t.fn = null;
        fn?.();
      }
      this.#recycle(group);
    }
    this.#arm();
  }

  #recycle(group: Group): void {
    group.size = 0;
    if (this.#spare.length < SPARE_GROUPS_MAX && !this.#closed) this.#spare.push(group);
  }

  #push(v: number): void {
    const h = this.#heap;
    h.push(v);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      const v = h[p]!;
      h[p] = h[i]!;
      h[i] = v;
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
        // Swapped through a local: a destructuring swap made an array each time (3 % of the main thread's allocations).
        const v = h[m]!;
        h[m] = h[i]!;
        h[i] = v;
        i = m;
      }
    }
    return top;
  }
}
