/**
 * Reads a session's chunks in order from a pool thread, from where the consumer left off
 * (READ_SEGMENT / READ_OFFSET in shared memory), and moves that mark once a chunk is consumed.
 * Reads go a block at a time, so a batch of small chunks costs one read, not one per chunk.
 * Only chunks at or below COMMITTED are ever asked for: their bytes are complete on disk.
 */
import fs from 'node:fs';
import { FLAG, type SessionFlags } from '../pool/flags.js';
import type { RecordPosition } from './appender.js';
import { HEADER_BYTES, readAt, segmentPath } from './log.js';

/** Bytes read at once; a larger record is read whole by itself. */
const READ_BLOCK_BYTES = 64 * 1024;

export interface SpooledChunk {
  seq: number;
  /** Epoch ms at which the chunk was written. */
  timeMs: number;
  payload: Buffer;
  position: RecordPosition;
}

export class ChunkReader {
  readonly #dir: string;
  #segment: number;
  #offset: number;
  #fd: number | null = null;
  #fdSegment = 0;
  /** Bytes of the open segment from file offset #blockStart (append-only: what was read stays true). */
  #block: Buffer = Buffer.alloc(0);
  #blockStart = 0;

  constructor(dir: string, flags: SessionFlags) {
    this.#dir = dir;
    this.#segment = flags.ints[FLAG.READ_SEGMENT]!;
    this.#offset = flags.ints[FLAG.READ_OFFSET]!;
  }

  /** Reads chunk `seq`, the one after the last read (or after CONSUMED for a new reader). */
  read(seq: number): SpooledChunk {
    for (let hops = 0; ; hops++) {
      const header = this.#bytes(HEADER_BYTES);
      if (header.byteLength < HEADER_BYTES) {
        // The end of this segment: the writer began the next one with this very seq.
        if (hops > 0) throw new Error(`spool: chunk ${seq} is missing (no segment holds it)`);
        this.#segment = seq;
        this.#offset = 0;
        continue;
      }
      const length = header.readUInt32LE(0);
      const found = header.readDoubleLE(8);
      if (found !== seq) throw new Error(`spool: expected chunk ${seq} but found ${found} (the log is damaged)`);
      const record = this.#bytes(HEADER_BYTES + length);
      if (record.byteLength < HEADER_BYTES + length) throw new Error(`spool: chunk ${seq} is incomplete on disk`);
      const end = this.#offset + HEADER_BYTES + length;
      const chunk = { seq, timeMs: header.readDoubleLE(16), payload: record.subarray(HEADER_BYTES), position: { segment: this.#segment, end } };
      this.#offset = end;
      return chunk;
    }
  }

  close(): void {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }

  /** `n` bytes at the current offset of the current segment (fewer at its end). */
  #bytes(n: number): Buffer {
    const at = this.#offset - this.#blockStart;
    if (this.#fdSegment === this.#segment && at >= 0 && at + n <= this.#block.byteLength) return this.#block.subarray(at, at + n);
    if (this.#fdSegment !== this.#segment) {
      this.close();
      this.#fd = fs.openSync(segmentPath(this.#dir, 'chunks', this.#segment), 'r');
      this.#fdSegment = this.#segment;
    }
    this.#block = readAt(this.#fd!, Math.max(n, READ_BLOCK_BYTES), this.#offset);
    this.#blockStart = this.#offset;
    return this.#block.subarray(0, n);
  }
}

/**
 * The consumer is done with chunk `seq` (its result is in the results log): move the read mark
 * past it, remove a segment it has left behind (unless the spool is kept), and wake a loop
 * producer waiting for room.
 */
export function markConsumed(dir: string, flags: SessionFlags, keep: boolean, seq: number, position: RecordPosition): void {
  const ints = flags.ints;
  const left = ints[FLAG.READ_SEGMENT]!;
  if (position.segment !== left) {
    if (!keep) fs.rmSync(segmentPath(dir, 'chunks', left), { force: true });
    ints[FLAG.READ_SEGMENT] = position.segment;
  }
  ints[FLAG.READ_OFFSET] = position.end;
  Atomics.store(ints, FLAG.CONSUMED, seq);
  Atomics.notify(ints, FLAG.CONSUMED);
}
