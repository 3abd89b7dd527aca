/**
 * Reads a session's chunks in order from a pool thread, from the published read mark (where
 * the consumer left off), and keeps its own mark as chunks are consumed; the owner publishes
 * `mark` (spool/progress.ts). Reads go a block at a time, so a batch of small chunks costs one
 * read, not one per chunk. Only chunks at or below COMMITTED are ever asked for.
 */
import fs from 'node:fs';
import type { SessionFlags } from '../pool/flags.js';
import type { RecordPosition } from './appender.js';
import { HEADER_BYTES, readAt, segmentPath } from './log.js';
import { readMark, type ReadMark } from './progress.js';

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
  /** Where the next read begins. */
  #segment: number;
  #offset: number;
  /** How far consumption got (published by the owner). */
  readonly #mark: ReadMark;
  #fd: number | null = null;
  #fdSegment = 0;
  /** Bytes of the open segment from file offset #blockStart (append-only: what was read stays true). */
  #block: Buffer = Buffer.alloc(0);
  #blockStart = 0;

  constructor(dir: string, flags: SessionFlags) {
    this.#dir = dir;
    this.#mark = readMark(flags);
    this.#segment = this.#mark.segment;
    this.#offset = this.#mark.offset;
  }

  /** The consumer's progress so far, for the owner to publish (its `left` is then emptied). */
  takeMark(): ReadMark {
    // One literal, not `{ ...this.#mark, left }`: a spread with a key added makes a hidden class
    // per object in Node 20's V8 (pool/messages.ts produceStepTask).
    const m = this.#mark;
    const mark: ReadMark = { consumed: m.consumed, segment: m.segment, offset: m.offset, left: m.left };
    this.#mark.left = [];
    return mark;
  }

  /** Reads chunk `seq`: the one after the last read (or after the published mark, at first). */
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

  /** The consumer is done with `chunk` (its result is in the results log). */
  consumed(chunk: { seq: number; position: RecordPosition }): void {
    const mark = this.#mark;
    if (chunk.position.segment !== mark.segment) {
      mark.left.push(mark.segment);
      mark.segment = chunk.position.segment;
    }
    mark.offset = chunk.position.end;
    mark.consumed = chunk.seq;
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
