/**
 * Appends records to one of a session's logs from a pool thread. It starts from the log's
 * published end (spool/progress.ts) and keeps its own end as it writes; the owner publishes
 * `end` (a loop after each append, the main thread when a step's task returns). A step task
 * makes one appender and appends its whole batch in one write; a loop keeps one open for life.
 *
 * Durability (SPOOL_FSYNC): `none` leaves the bytes in the page cache (they survive the process
 * being killed, not the machine losing power); `batch` also fsyncs a log at most every
 * SPOOL_FSYNC_INTERVAL_MS and whenever a segment is closed (a power loss loses at most that
 * interval); `always` fsyncs every write before its records become visible.
 */
import fs from 'node:fs';
import { FLAG, LOG_TIME, nowMs, type SessionFlags } from '../pool/flags.js';
import { HEADER_BYTES, encodeRecords, listSegments, segmentPath, writeAll, type LogKind, type LogRecord } from './log.js';
import { chunkLogEnd, resultLogEnd, type ChunkLogEnd, type ResultLogEnd } from './progress.js';
import { heldFd } from './log-files.js';

export type FsyncPolicy = 'none' | 'batch' | 'always';

/** How a session's logs are written and kept (config.ts names the variables). */
export interface LogPolicy {
  /** A segment is closed and a new one begun once it holds this many bytes. */
  segmentBytes: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /** Results kept for RESUME: at most this many bytes per session... */
  retainBytes: number;
  /** ...and none older than this, ms (whole segments are dropped). */
  retainMs: number;
  /**
   * A results segment is closed for its age (retainMs / 4) only once it holds at least this many
   * bytes (0: for its age alone). See #segmentTooOld.
   */
  ageRollMinBytes: number;
}

/** Where a record ended up: its segment (by first seq) and the offset just past it. */
export interface RecordPosition {
  segment: number;
  end: number;
}

const DIRTY = { chunks: FLAG.CHUNKS_DIRTY, results: FLAG.RESULTS_DIRTY } as const;
const SYNCED_AT = { chunks: LOG_TIME.chunksSyncedAt, results: LOG_TIME.resultsSyncedAt } as const;

export class LogAppender {
  readonly #dir: string;
  readonly #kind: LogKind;
  readonly #flags: SessionFlags;
  readonly #policy: LogPolicy;
  #segment: number;
  #bytes: number;
  #last: number;
  #openedAt = 0;
  #windowFrom = 0;
  #fd: number | null = null;
  /** Segment the open fd belongs to. */
  #fdSegment = 0;
  /** The open fd is the main thread's (spool/log-files.ts): never closed here. */
  #fdHeld = false;

  constructor(dir: string, kind: LogKind, flags: SessionFlags, policy: LogPolicy) {
    this.#dir = dir;
    this.#kind = kind;
    this.#flags = flags;
    this.#policy = policy;
    if (kind === 'chunks') {
      const end = chunkLogEnd(flags);
      this.#segment = end.segment;
      this.#bytes = end.bytes;
      this.#last = end.committed;
    } else {
      const end = resultLogEnd(flags);
      this.#segment = end.segment;
      this.#bytes = end.bytes;
      this.#openedAt = end.openedAt;
      this.#windowFrom = end.windowFrom;
      this.#last = 0;
    }
  }

  /** Where this appender's log ends now, for the owner to publish. */
  get chunkEnd(): ChunkLogEnd {
    return { segment: this.#segment, bytes: this.#bytes, committed: this.#last };
  }

  get resultEnd(): ResultLogEnd {
    return { segment: this.#segment, bytes: this.#bytes, openedAt: this.#openedAt, windowFrom: this.#windowFrom };
  }

  /**
   * Appends `records` (consecutive seqs) in one write at the log's end, beginning a new segment
   * first when the open one is full. Returns each record's position. Nothing is published here.
   */
  append(records: readonly LogRecord[]): RecordPosition[] {
    if (records.length === 0) return [];
    if (this.#flags.ints[DIRTY[this.#kind]] === 1) this.#cutUnpublished();
    const buf = encodeRecords(records);
    const full = this.#bytes > 0 && (this.#bytes + buf.byteLength > this.#policy.segmentBytes || this.#segmentTooOld());
    if (this.#segment === 0 || full) {
      const spare = this.#segment !== 0 ? this.#closeSegment() : null;
      this.#segment = records[0]!.seq;
      this.#bytes = 0;
      if (this.#kind === 'results') {
        this.#openedAt = nowMs();
        if (this.#windowFrom === 0) this.#windowFrom = this.#segment;
      }
      // The segment that just left the window becomes the new one: emptied, then renamed. Creating
      // a file costs ext4 an inode allocation, which skips every recently deleted inode (up to
      // 0.9 ms of CPU on this VM's disk after many deletes), and removing one a delete; a rename
      // costs ~10 us.
      if (spare !== null) this.#reuse(spare, this.#segment);
    }
    // A new segment is opened empty ('w'): a step rolled back may have left one by that name (a
    // recycled one is open already, emptied).
    const fd = this.#open(this.#segment, this.#bytes === 0 ? 'w' : 'a');
    writeAll(fd, buf);
    if (this.#policy.fsync === 'always') fs.fsyncSync(fd);
    else if (this.#policy.fsync === 'batch') this.#syncIfDue(fd);
    const positions: RecordPosition[] = [];
    let end = this.#bytes;
    for (const r of records) {
      end += HEADER_BYTES + r.payload.byteLength;
      positions.push({ segment: this.#segment, end });
    }
    this.#bytes = end;
    this.#last = records[records.length - 1]!.seq;
    return positions;
  }

  close(): void {
    if (this.#fd !== null && !this.#fdHeld) fs.closeSync(this.#fd);
    this.#fd = null;
  }

  /**
   * Opens `spare` emptied and only then gives it `segment`'s name, keeping the descriptor as the
   * new segment's: no moment exists when the new name holds the old records, and a crash in
   * between leaves an empty old segment, which recovery removes. If either step fails the spare
   * goes and the segment is created as usual.
   */
  #reuse(spare: string, segment: number): void {
    let fd: number | null = null;
    try {
      fd = fs.openSync(spare, 'w');
      fs.renameSync(spare, segmentPath(this.#dir, this.#kind, segment));
    } catch {
      if (fd !== null) fs.closeSync(fd);
      fs.rmSync(spare, { force: true });
      return;
    }
    this.close();
    this.#fd = fd;
    this.#fdSegment = segment;
    this.#fdHeld = false;
  }

  #open(segment: number, flags: 'a' | 'w'): number {
    if (this.#fd !== null && this.#fdSegment === segment) return this.#fd;
    this.close();
    const held = heldFd(this.#flags, this.#kind, segment);
    this.#fdHeld = held !== null;
    this.#fd = held ?? fs.openSync(segmentPath(this.#dir, this.#kind, segment), flags);
    this.#fdSegment = segment;
    return this.#fd;
  }

  #syncIfDue(fd: number): void {
    const slot = SYNCED_AT[this.#kind];
    if (nowMs() - this.#flags.floats[slot]! < this.#policy.fsyncIntervalMs) return;
    fs.fsyncSync(fd);
    this.#flags.floats[slot] = nowMs();
  }

  /**
   * A step that shared its thread with a failing one was rolled back: cut what it wrote past the
   * published end, and any segment it began, so the log holds exactly what was published.
   */
  #cutUnpublished(): void {
    if (this.#segment !== 0) fs.truncateSync(segmentPath(this.#dir, this.#kind, this.#segment), this.#bytes);
    for (const s of listSegments(fs.readdirSync(this.#dir), this.#kind)) {
      if (s > this.#segment) fs.rmSync(segmentPath(this.#dir, this.#kind, s), { force: true });
    }
    this.#flags.ints[DIRTY[this.#kind]] = 0;
  }

  /**
   * A results segment older than a quarter of the window is closed, so whole segments can expire,
   * once it holds `ageRollMinBytes` (as Kafka keeps a segment open until it is full or its
   * `segment.ms` passed, whichever is later here). A new segment costs a file created, or an
   * expired one recycled, and the main thread's descriptor moved to it: at steady's rate (a result
   * every 1.5 s) a roll every 30 s was some 40 µs per result (docs/PERFORMANCE.md, "Results
   * segments rolled by age"). A slow session's results are kept longer instead, by up to that many
   * bytes: the window never reaches back less far than RESUME_RETAIN_SECONDS.
   */
  #segmentTooOld(): boolean {
    return this.#kind === 'results' && this.#bytes >= this.#policy.ageRollMinBytes && nowMs() - this.#openedAt > this.#policy.retainMs / 4;
  }

  /**
   * The open segment is full: make it durable where asked, then drop results outside the window.
   * Returns the path of a dropped segment kept to become the next one, if any.
   */
  #closeSegment(): string | null {
    if (this.#policy.fsync === 'batch') fs.fsyncSync(this.#open(this.#segment, 'a'));
    this.close();
    return this.#kind === 'results' ? this.#expireResults() : null;
  }

  /**
   * Removes the oldest results segments (never the open one) while the log holds more than
   * `retainBytes` or they are older than `retainMs`, and notes where the window now begins.
   * Runs once per closed segment, so the listing is rare. Only published segments are removed.
   * The last one dropped is not removed but returned, for the next segment to reuse.
   */
  #expireResults(): string | null {
    const open = this.#segment;
    const segments = listSegments(fs.readdirSync(this.#dir), 'results');
    const stats = segments.map((s) => ({ seq: s, st: fs.statSync(segmentPath(this.#dir, 'results', s), { throwIfNoEntry: false }) }));
    let total = stats.reduce((n, s) => n + (s.st?.size ?? 0), 0);
    const oldestKept = nowMs() - this.#policy.retainMs;
    let from = open;
    let spare: string | null = null;
    for (const s of stats) {
      if (s.seq >= open) break;
      if (total <= this.#policy.retainBytes && (s.st?.mtimeMs ?? 0) >= oldestKept) {
        from = s.seq;
        break;
      }
      if (spare !== null) fs.rmSync(spare, { force: true });
      spare = s.st ? segmentPath(this.#dir, 'results', s.seq) : null;
      total -= s.st?.size ?? 0;
    }
    this.#windowFrom = from;
    return spare;
  }
}
