/**
 * What of a session's logs is published: visible to readers, counted as done, and what a new
 * writer starts from. Every writer works from the published state and reports how far it got.
 * Who publishes is the side's owner: a loop, in its own thread, after each record; the main
 * thread for a step, when the step's task comes back. So a step whose thread died before its
 * answer arrived (a batch it shared with a failing step) can be run again as if it never ran:
 * nothing it wrote was published, and the next writer cuts those bytes (see markRolledBack).
 */
import fs from 'node:fs';
import { FLAG, LOG_TIME, wake, type SessionFlags } from '../pool/flags.js';
import { segmentPath } from './log.js';

/** The end of the chunks log: its open segment, that segment's bytes, the last seq in it. */
export interface ChunkLogEnd {
  segment: number;
  bytes: number;
  committed: number;
}

/** The end of the results log, when its open segment began (epoch ms), and where RESUME can reach back to. */
export interface ResultLogEnd {
  segment: number;
  bytes: number;
  openedAt: number;
  windowFrom: number;
}

/** How far the consumer got: the last chunk done, where the next one begins, segments it left. */
export interface ReadMark {
  consumed: number;
  segment: number;
  offset: number;
  /** Chunk segments every record of which was consumed: removed when published (unless kept). */
  left: number[];
}

export function chunkLogEnd(flags: SessionFlags): ChunkLogEnd {
  const ints = flags.ints;
  return { segment: ints[FLAG.CHUNK_SEGMENT]!, bytes: ints[FLAG.CHUNK_SEGMENT_BYTES]!, committed: Atomics.load(ints, FLAG.COMMITTED) };
}

export function resultLogEnd(flags: SessionFlags): ResultLogEnd {
  const ints = flags.ints;
  return {
    segment: ints[FLAG.RESULT_SEGMENT]!,
    bytes: ints[FLAG.RESULT_SEGMENT_BYTES]!,
    openedAt: flags.floats[LOG_TIME.resultSegmentOpenedAt]!,
    windowFrom: ints[FLAG.RESULT_WINDOW_FROM]!,
  };
}

export function readMark(flags: SessionFlags): ReadMark {
  const ints = flags.ints;
  return { consumed: Atomics.load(ints, FLAG.CONSUMED), segment: ints[FLAG.READ_SEGMENT]!, offset: ints[FLAG.READ_OFFSET]!, left: [] };
}

/** Makes the chunks up to `end.committed` visible to the consumer (their bytes are on disk). */
export function publishChunks(flags: SessionFlags, end: ChunkLogEnd): void {
  const ints = flags.ints;
  ints[FLAG.CHUNK_SEGMENT] = end.segment;
  ints[FLAG.CHUNK_SEGMENT_BYTES] = end.bytes;
  Atomics.store(ints, FLAG.COMMITTED, end.committed);
  wake(flags);
}

export function publishResults(flags: SessionFlags, end: ResultLogEnd): void {
  const ints = flags.ints;
  ints[FLAG.RESULT_SEGMENT] = end.segment;
  ints[FLAG.RESULT_SEGMENT_BYTES] = end.bytes;
  ints[FLAG.RESULT_WINDOW_FROM] = end.windowFrom;
  flags.floats[LOG_TIME.resultSegmentOpenedAt] = end.openedAt;
}

/**
 * Moves the read mark and wakes a loop producer waiting for room. The segments the consumer
 * left are removed by `removeLeft` (synchronously in a loop's thread, asynchronously on the
 * main thread), unless the spool is kept.
 */
export function publishConsumed(flags: SessionFlags, mark: ReadMark): void {
  const ints = flags.ints;
  ints[FLAG.READ_SEGMENT] = mark.segment;
  ints[FLAG.READ_OFFSET] = mark.offset;
  Atomics.store(ints, FLAG.CONSUMED, mark.consumed);
  wake(flags);
}

export function removeLeftSync(dir: string, keep: boolean, left: readonly number[]): void {
  if (keep) return;
  for (const s of left) fs.rmSync(segmentPath(dir, 'chunks', s), { force: true });
}

export function removeLeft(dir: string, keep: boolean, left: readonly number[]): Promise<unknown> {
  if (keep || left.length === 0) return Promise.resolve();
  return Promise.all(left.map((s) => fs.promises.rm(segmentPath(dir, 'chunks', s), { force: true })));
}

/** A step's task died unanswered: whatever it wrote past the published ends is cut by the next writer. */
export function markRolledBack(flags: SessionFlags): void {
  flags.ints[FLAG.CHUNKS_DIRTY] = 1;
  flags.ints[FLAG.RESULTS_DIRTY] = 1;
}

/** The producer will write nothing more: a loop consumer's next() returns null once it took the rest. */
export function publishProducerDone(flags: SessionFlags): void {
  Atomics.store(flags.ints, FLAG.PRODUCER_DONE, 1);
  wake(flags);
}
