/**
 * Appends records to one of a session's logs from a pool thread. A step task makes one, appends
 * its whole batch in one write and closes it; a loop keeps one open for its life. Which segment
 * is open and how big it is live in the session's shared memory, because the next writer may be
 * another thread.
 *
 * Durability (SPOOL_FSYNC): `none` leaves the bytes in the page cache (they survive the process
 * being killed, not the machine losing power); `batch` also fsyncs a log at most every
 * SPOOL_FSYNC_INTERVAL_MS and whenever a segment is closed (a power loss loses at most that
 * interval); `always` fsyncs every write before its records become visible.
 */
import fs from 'node:fs';
import { FLAG, LOG_TIME, nowMs, type SessionFlags } from '../pool/flags.js';
import { HEADER_BYTES, encodeRecords, listSegments, segmentPath, writeAll, type LogKind, type LogRecord } from './log.js';

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
}

/** Where a record ended up: its segment (by first seq) and the offset just past it. */
export interface RecordPosition {
  segment: number;
  end: number;
}

const SLOTS = {
  chunks: { segment: FLAG.CHUNK_SEGMENT, bytes: FLAG.CHUNK_SEGMENT_BYTES, syncedAt: LOG_TIME.chunksSyncedAt },
  results: { segment: FLAG.RESULT_SEGMENT, bytes: FLAG.RESULT_SEGMENT_BYTES, syncedAt: LOG_TIME.resultsSyncedAt },
} as const;

export class LogAppender {
  readonly #dir: string;
  readonly #kind: LogKind;
  readonly #flags: SessionFlags;
  readonly #policy: LogPolicy;
  #fd: number | null = null;
  /** Segment the open fd belongs to. */
  #fdSegment = 0;

  constructor(dir: string, kind: LogKind, flags: SessionFlags, policy: LogPolicy) {
    this.#dir = dir;
    this.#kind = kind;
    this.#flags = flags;
    this.#policy = policy;
  }

  /**
   * Appends `records` (consecutive seqs) in one write, beginning a new segment first when the
   * open one is full. Returns each record's position. Nothing is published here: the caller
   * publishes the seqs once this returns, so a reader never sees bytes not yet written.
   */
  append(records: readonly LogRecord[]): RecordPosition[] {
    if (records.length === 0) return [];
    const ints = this.#flags.ints;
    const slots = SLOTS[this.#kind];
    const buf = encodeRecords(records);
    let segment = ints[slots.segment]!;
    let size = ints[slots.bytes]!;
    if (segment === 0 || (size > 0 && (size + buf.byteLength > this.#policy.segmentBytes || this.#segmentTooOld()))) {
      if (segment !== 0) this.#closeSegment(segment);
      segment = records[0]!.seq;
      size = 0;
      ints[slots.segment] = segment;
      ints[slots.bytes] = 0;
      if (this.#kind === 'results') {
        this.#flags.floats[LOG_TIME.resultSegmentOpenedAt] = nowMs();
        if (ints[FLAG.RESULT_WINDOW_FROM] === 0) ints[FLAG.RESULT_WINDOW_FROM] = segment;
      }
    }
    const fd = this.#open(segment);
    if (this.#policy.fsync === 'always') {
      writeAll(fd, buf);
      fs.fsyncSync(fd);
    } else {
      writeAll(fd, buf);
      if (this.#policy.fsync === 'batch' && nowMs() - this.#flags.floats[slots.syncedAt]! >= this.#policy.fsyncIntervalMs) {
        fs.fsyncSync(fd);
        this.#flags.floats[slots.syncedAt] = nowMs();
      }
    }
    const positions: RecordPosition[] = [];
    let end = size;
    for (const r of records) {
      end += HEADER_BYTES + r.payload.byteLength;
      positions.push({ segment, end });
    }
    ints[slots.bytes] = end;
    return positions;
  }

  /** Closes the open file (the segment stays the log's open one for the next writer). */
  close(): void {
    if (this.#fd !== null) {
      fs.closeSync(this.#fd);
      this.#fd = null;
    }
  }

  #open(segment: number): number {
    if (this.#fd !== null && this.#fdSegment === segment) return this.#fd;
    this.close();
    this.#fd = fs.openSync(segmentPath(this.#dir, this.#kind, segment), 'a');
    this.#fdSegment = segment;
    return this.#fd;
  }

  /** A results segment older than a quarter of the window is closed, so whole segments can expire. */
  #segmentTooOld(): boolean {
    if (this.#kind !== 'results') return false;
    return nowMs() - this.#flags.floats[LOG_TIME.resultSegmentOpenedAt]! > this.#policy.retainMs / 4;
  }

  /** The open segment is full: make it durable where asked, then drop results outside the window. */
  #closeSegment(segment: number): void {
    if (this.#policy.fsync === 'batch') fs.fsyncSync(this.#open(segment));
    this.close();
    if (this.#kind === 'results') this.#expireResults();
  }

  /**
   * Removes the oldest results segments (never the open one) while the log holds more than
   * `retainBytes` or they are older than `retainMs`, and publishes where the window now begins.
   * Runs once per closed segment, so the listing is rare.
   */
  #expireResults(): void {
    const ints = this.#flags.ints;
    const open = ints[FLAG.RESULT_SEGMENT]!;
    const segments = listSegments(fs.readdirSync(this.#dir), 'results');
    const stats = segments.map((s) => ({ seq: s, st: fs.statSync(segmentPath(this.#dir, 'results', s), { throwIfNoEntry: false }) }));
    let total = stats.reduce((n, s) => n + (s.st?.size ?? 0), 0);
    const oldestKept = nowMs() - this.#policy.retainMs;
    let from = open;
    for (const s of stats) {
      if (s.seq === open) break;
      if (total <= this.#policy.retainBytes && (s.st?.mtimeMs ?? 0) >= oldestKept) {
        from = s.seq;
        break;
      }
      fs.rmSync(segmentPath(this.#dir, 'results', s.seq), { force: true });
      total -= s.st?.size ?? 0;
    }
    ints[FLAG.RESULT_WINDOW_FROM] = from;
  }
}
