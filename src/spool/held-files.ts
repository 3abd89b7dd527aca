/**
 * How many log descriptors the service may hold open for its sessions' steps (spool/log-files.ts),
 * and taking them back when sockets need the room.
 *
 * Every held descriptor spares a step an open and a close of its segment: in the crowd (10,000
 * sessions at 1 Hz) a step that opens its files costs about a sixth more CPU. But descriptors and
 * sockets come out of one open-file limit. So the budget is not a fixed number. A session may
 * hold descriptors only while
 *
 *     held + open sockets + OPEN_FILES_RESERVE ≤ OPEN_FILES_LIMIT   (and held ≤ SPOOL_HELD_FILES_MAX)
 *
 * and when a new connection would break that, sessions give theirs back (their steps open their
 * files themselves meanwhile) until the sum fits again. A session gives its descriptors back only
 * while none of its steps is on its way: a step's thread may be writing through one. When too few
 * are idle, as many busy ones as cover what is over are asked to pause (a resident session, whose
 * steps are always on their way, leaves its thread), and the budget tries again shortly. When a
 * socket closes or an ended session's descriptors are closed (with its folder's removal: after a
 * storm of STOPs, in a storm), sessions that hold none (they gave theirs back, or found the budget
 * spent when they started) take theirs again, as many as fit.
 */
import fs from 'node:fs';

/** A session's held descriptors, as the budget sees them (spool/log-files.ts LogFiles). */
export interface FileHolder {
  /** Closes its held descriptors if none of its steps is on its way; how many it closed. */
  giveBack(): number;
  /**
   * Its steps are on their way (giveBack closed nothing): lets them pause soon, so that a giveBack
   * shortly after finds it idle; how many descriptors it holds (and would give then).
   */
  askBack(): number;
  /** Takes its descriptors again (through `take`) if they fit; how many it took. */
  retake(): number;
}

export interface HeldFilesLimits {
  /** SPOOL_HELD_FILES_MAX: descriptors held for all sessions together, at most. */
  max: number;
  /** OPEN_FILES_LIMIT: the process's open-file limit as the budget counts it. */
  openFilesLimit: number;
  /** OPEN_FILES_RESERVE: descriptors never spent on held segments (HTTP, steps' own opens, children). */
  reserve: number;
  /**
   * SPOOL_HELD_FILES_ASK_MS: how long a busy holder asked to pause counts as about to give back, ms;
   * past it (its step hangs), others are asked in its place.
   */
  askPatienceMs: number;
}

/** How long a give-back waits for busy sessions before it tries again, ms. */
const RETRY_MS = 5;

export class HeldFilesBudget {
  readonly #limits: HeldFilesLimits;
  readonly #sockets: () => number;
  readonly #holders = new Set<FileHolder>();
  /** Holders that hold nothing and would: offered the room when some comes back. */
  readonly #wanting = new Set<FileHolder>();
  #held = 0;
  /** Busy holders asked to pause (askBack), and when: tried first, and counted as about to give back. */
  readonly #asked = new Map<FileHolder, number>();
  #retry: NodeJS.Timeout | null = null;
  #givenBack = 0;

  /** @param sockets how many client sockets are open now. */
  constructor(limits: HeldFilesLimits, sockets: () => number) {
    this.#limits = limits;
    this.#sockets = sockets;
  }

  /** Descriptors held now. */
  get held(): number {
    return this.#held;
  }

  /** Descriptors given back so that sockets had room, since start. */
  get givenBack(): number {
    return this.#givenBack;
  }

  /** Takes `n` descriptors for `holder` if they fit; false when they do not (its steps open their own). */
  take(n: number, holder: FileHolder): boolean {
    if (!this.fits(n)) return false;
    this.#held += n;
    this.#holders.add(holder);
    this.#wanting.delete(holder);
    return true;
  }

  /** Whether `n` more descriptors would fit now. */
  fits(n: number): boolean {
    return this.#held + n <= this.#limits.max && this.#over(n) <= 0;
  }

  /** `holder` closed `n` descriptors; it holds none after this. */
  give(n: number, holder: FileHolder): void {
    this.#held -= n;
    this.#holders.delete(holder);
    this.#asked.delete(holder);
  }

  /** `holder` holds nothing and would take its descriptors when they fit (offerRoom). */
  want(holder: FileHolder): void {
    this.#wanting.add(holder);
  }

  /**
   * `holder`'s session ended: it is never asked to give back nor offered room again. What it
   * still holds stays counted until it gives it (a descriptor may be closed later: LogFiles.closeWhen).
   */
  leave(holder: FileHolder): void {
    this.#wanting.delete(holder);
    this.#holders.delete(holder);
    this.#asked.delete(holder);
  }

  /** Holders that hold nothing and would, now. */
  get wanting(): number {
    return this.#wanting.size;
  }

  /**
   * A socket closed or a session ended: holders that hold nothing take their descriptors again,
   * while a session's two fit. Not while sessions are still to give theirs back (makeRoom retries).
   */
  offerRoom(): void {
    if (this.#retry) return;
    for (const holder of this.#wanting) {
      if (!this.fits(2)) return;
      holder.retake();
    }
  }

  /**
   * A socket was opened: if held descriptors no longer fit beside the sockets, sessions give theirs
   * back. Holders asked before are tried first (they were to pause); then the others in turn, an
   * idle one giving back at once, a busy one asked to pause, until what is given and what the
   * asked are about to give covers what is over. A pass stops there: with every session resident
   * (always busy) a scan of all holders for each new socket cost the crowd's start seconds.
   */
  makeRoom(): void {
    let over = this.#over(0);
    if (over <= 0) return;
    const now = Date.now();
    let coming = 0;
    for (const [holder, askedAt] of this.#asked) {
      // A holder that gives back leaves the map while it is iterated: a Map allows that.
      over -= this.#giveBack(holder);
      if (over <= 0) return;
      // Asked again, not only counted: a session caught mid-step on the main thread's path must
      // not become resident again after it (StepProducer.leaveThread holds it off for one answer).
      if (this.#asked.has(holder) && now - askedAt <= this.#limits.askPatienceMs) coming += holder.askBack();
    }
    for (const holder of this.#holders) {
      if (coming >= over) break;
      if (this.#asked.has(holder)) continue;
      const n = this.#giveBack(holder);
      over -= n;
      if (over <= 0) return;
      if (n === 0) {
        const asked = holder.askBack();
        if (asked > 0) {
          this.#asked.set(holder, now);
          coming += asked;
        }
      }
    }
    // Busy sessions were asked to pause: try again shortly (nothing to wait for when none was).
    if (this.#asked.size > 0 && !this.#retry) {
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.makeRoom();
      }, RETRY_MS);
      this.#retry.unref();
    }
  }

  #giveBack(holder: FileHolder): number {
    const n = holder.giveBack();
    this.#givenBack += n;
    return n;
  }

  close(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#asked.clear();
  }

  /** How many descriptors over the limit `extra` more would be (≤ 0: they fit). */
  #over(extra: number): number {
    return this.#held + extra + this.#sockets() + this.#limits.reserve - this.#limits.openFilesLimit;
  }
}

/**
 * The process's limit on open files as it stands once Node has started (Node raises its soft limit
 * to the hard one, so this is normally `ulimit -Hn`), read from /proc/self/limits; null where that
 * cannot be read (not Linux).
 */
export function processOpenFilesLimit(): number | null {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
