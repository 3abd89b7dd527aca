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
 * steps are always on their way, leaves its thread for a step), and the budget tries again shortly.
 * When a socket
 * closes or an ended session's descriptors are closed (with its folder's removal: after a storm of
 * STOPs, in a storm), sessions that hold none (they gave theirs back, or found the budget spent
 * when they started) take theirs again, as many as fit.
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

  /** A socket was opened: if held descriptors no longer fit beside the sockets, sessions give theirs back. */
  makeRoom(): void {
    let over = this.#over(0);
    if (over <= 0) return;
    const busy: FileHolder[] = [];
    // A holder that gives back leaves the set while it is iterated: a Set allows that.
    for (const holder of this.#holders) {
      const n = holder.giveBack();
      if (n === 0) busy.push(holder);
      this.#givenBack += n;
      over -= n;
      if (over <= 0) return;
    }
    // Too few were idle: only as many busy ones as cover the rest are asked to pause (a resident
    // leaves its thread for it), and all are tried again shortly.
    for (let i = 0, asked = 0; i < busy.length && asked < over; i++) asked += busy[i]!.askBack();
    if (busy.length > 0 && !this.#retry) {
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.makeRoom();
      }, RETRY_MS);
      this.#retry.unref();
    }
  }

  close(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
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
