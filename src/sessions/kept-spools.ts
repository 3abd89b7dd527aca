import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { tandemError } from '../errors.js';
import { KEEP_MARKER, removeSpool, spoolRoot } from './spool.js';

/**
 * Spools kept after their session ended (START `keep: true`, allowed by KEPT_SPOOLS_ALLOWED).
 * Clients must not control disk use, so kept spools are bounded twice: by age
 * (KEPT_SPOOLS_MAX_AGE_SECONDS since the session ended) and by total size
 * (KEPT_SPOOLS_MAX_BYTES; the oldest go first). Both are enforced at start-up, when a keeping
 * session ends, and by one unref'd timer (KEPT_SPOOLS_SWEEP_INTERVAL_SECONDS).
 *
 * A kept spool is a spool folder holding the KEEP_MARKER file (src/sessions/spool.ts); this
 * module only reads folder-level facts (the marker, the files' sizes), so it holds whatever the
 * spool's own format is. The marker's mtime is when the spool was kept: it is written at START
 * and touched when the session ends. A spool whose session still runs is listed (`live`) but
 * neither expired, counted against the quota, nor deleted.
 */
export interface KeptSpoolsOptions {
  dataDir: string;
  /** KEPT_SPOOLS_MAX_BYTES. */
  maxBytes: number;
  /** KEPT_SPOOLS_MAX_AGE_SECONDS, in ms. */
  maxAgeMs: number;
  /** KEPT_SPOOLS_SWEEP_INTERVAL_SECONDS, in ms. */
  sweepIntervalMs: number;
  /**
   * The running session that writes this spool, as the registry knows it: null when none runs,
   * else whether it keeps its spool (START `keep`). A running session's folder is a kept spool
   * only if it keeps it, so the others are never read: a sweep or a listing reads only folders
   * that may be kept, not every running session's (10,000 of them in a crowd).
   */
  live(id: string): { keep: boolean } | null;
  logger: Logger;
}

export interface KeptSpool {
  /** The folder's name: the id of the session that wrote it. */
  id: string;
  live: boolean;
  sizeBytes: number;
  files: number;
  /** When the spool was kept (its session ended; its START while it runs), ms since the epoch. */
  keptAtMs: number;
}

/** Spools removed in one sweep at most: a tick's work is bounded, the next tick goes on. */
const SWEEP_MAX_REMOVALS = 64;
/** A spool id is a session id: a UUID. Anything else is refused before it reaches a path. */
const SPOOL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type KeptSpoolsState = 'IDLE' | 'RUNNING' | 'CLOSED';

export class KeptSpools {
  readonly #opts: KeptSpoolsOptions;
  readonly #root: string;
  #state: KeptSpoolsState = 'IDLE';
  #timer: NodeJS.Timeout | null = null;
  /** The sweep under way: sweeps never overlap, a request during one waits for it. */
  #sweeping: Promise<string[]> | null = null;

  constructor(opts: KeptSpoolsOptions) {
    this.#opts = opts;
    this.#root = spoolRoot(opts.dataDir);
  }

  /** Sweeps once, then every sweepIntervalMs on a timer that does not hold the process open. */
  async start(): Promise<void> {
    if (this.#state !== 'IDLE') return;
    this.#state = 'RUNNING';
    await this.sweep();
    if (this.#state !== 'RUNNING') return;
    this.#timer = setInterval(() => void this.sweep(), this.#opts.sweepIntervalMs).unref();
  }

  /** Kept spools on disk, oldest first: the running sessions' that keep theirs too (`live`). */
  list(): Promise<KeptSpool[]> {
    return this.#list((id) => this.#opts.live(id)?.keep !== false);
  }

  /** The kept spools among the folders whose id `mayBeKept`, oldest first. */
  async #list(mayBeKept: (id: string) => boolean): Promise<KeptSpool[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.#root);
    } catch {
      return [];
    }
    const found = await Promise.all(names.filter((n) => SPOOL_ID.test(n) && mayBeKept(n)).map((n) => this.#read(n)));
    return found.filter((s): s is KeptSpool => s !== null).sort((a, b) => a.keptAtMs - b.keptAtMs || (a.id < b.id ? -1 : 1));
  }

  /** One kept spool, or null when there is none by that id. */
  async get(id: string): Promise<KeptSpool | null> {
    return SPOOL_ID.test(id) ? this.#read(id) : null;
  }

  /**
   * Deletes a kept spool; returns what it was.
   * @throws VALIDATION for an id that is not a session id, SPOOL_NOT_FOUND when no kept spool
   * has it, SPOOL_LIVE while its session runs.
   */
  async remove(id: string): Promise<KeptSpool> {
    if (!SPOOL_ID.test(id)) throw tandemError('VALIDATION', `spool id ${JSON.stringify(id)} is not a session id (a UUID)`);
    const spool = await this.#read(id);
    if (!spool) throw tandemError('SPOOL_NOT_FOUND', `no kept spool ${id}: it was never kept, or was removed (see GET /api/spools)`);
    if (spool.live) throw tandemError('SPOOL_LIVE', `spool ${id} belongs to a running session; stop it first (POST /api/sessions/${id}/stop)`);
    await removeSpool(path.join(this.#root, id));
    this.#opts.logger.info({ spool: id, sizeBytes: spool.sizeBytes }, 'kept spool removed on request');
    return spool;
  }

  /** A keeping session ended: its spool is kept from now on, and may push the total over the quota. */
  sessionEnded(id: string): void {
    const marker = path.join(this.#root, id, KEEP_MARKER);
    const now = new Date();
    void fs.promises
      .utimes(marker, now, now)
      .catch(() => {})
      .then(() => this.sweep());
  }

  /**
   * Removes expired kept spools, then the oldest ones while the total is over the quota; at most
   * SWEEP_MAX_REMOVALS in one call. Returns the ids removed.
   */
  sweep(): Promise<string[]> {
    if (this.#state === 'CLOSED') return Promise.resolve([]);
    const run = (this.#sweeping ?? Promise.resolve([] as string[])).then(() => this.#sweepOnce());
    const mine = run.catch((err: unknown) => {
      this.#opts.logger.error({ err }, 'kept spools sweep failed');
      return [] as string[];
    });
    this.#sweeping = mine;
    void mine.then(() => {
      if (this.#sweeping === mine) this.#sweeping = null;
    });
    return mine;
  }

  /** Stops the timer and waits for a sweep under way. Safe to call twice. */
  async close(): Promise<void> {
    this.#state = 'CLOSED';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }

  async #sweepOnce(): Promise<string[]> {
    const now = Date.now();
    // A running session's spool is never expired, counted or removed: its folder is not read.
    const candidates = (await this.#list((id) => this.#opts.live(id) === null)).filter((s) => !s.live);
    const removed: string[] = [];
    const reasons: Array<{ spool: string; reason: string }> = [];
    let total = candidates.reduce((n, s) => n + s.sizeBytes, 0);
    for (const s of candidates) {
      if (removed.length >= SWEEP_MAX_REMOVALS) break;
      const expired = now - s.keptAtMs > this.#opts.maxAgeMs;
      const overQuota = total > this.#opts.maxBytes;
      if (!expired && !overQuota) break; // oldest first: nothing later is expired either
      await removeSpool(path.join(this.#root, s.id));
      total -= s.sizeBytes;
      removed.push(s.id);
      reasons.push({ spool: s.id, reason: expired ? 'KEPT_SPOOLS_MAX_AGE_SECONDS' : 'KEPT_SPOOLS_MAX_BYTES' });
    }
    if (removed.length > 0) this.#opts.logger.info({ removed: reasons }, 'kept spools removed');
    return removed;
  }

  async #read(id: string): Promise<KeptSpool | null> {
    const dir = path.join(this.#root, id);
    const marker = await fs.promises.stat(path.join(dir, KEEP_MARKER)).catch(() => null);
    if (!marker) return null;
    let sizeBytes = 0;
    let files = 0;
    for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
      if (name === KEEP_MARKER) continue;
      const st = await fs.promises.stat(path.join(dir, name)).catch(() => null);
      if (!st?.isFile()) continue;
      sizeBytes += st.size;
      files++;
    }
    return { id, live: this.#opts.live(id) !== null, sizeBytes, files, keptAtMs: marker.mtimeMs };
  }
}
