/**
 * The spool's on-disk format: the one module that writes and reads it. Pool threads append,
 * the main thread reads (RESUME) and start-up recovery checks it.
 *
 * A session's folder holds two logs, `chunks` (what the producer wrote) and `results` (what the
 * consumer made of each chunk, appended before it is sent). A log is a series of segment files
 * `c-<firstSeq>.seg` / `r-<firstSeq>.seg`, each named by the seq of its first record (Kafka's
 * log, NATS's file store). A segment only ever grows at its end, many records per write; a
 * record is framed so that a torn tail (kill -9 mid-write) is found and cut:
 *
 *     u32 payload length | u32 crc32(seq..payload) | f64 seq | f64 time (epoch ms) | payload
 *
 * All numbers little-endian. A record becomes visible to the consumer only after its bytes were
 * written and its seq was published in shared memory (see pool/flags.ts COMMITTED), so readers
 * never parse past what is complete; recovery trusts nothing and checks every checksum.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';

export const HEADER_BYTES = 24;
/** A record's payload is at most this large (a chunk beyond it is refused at write()). */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

export type LogKind = 'chunks' | 'results';
const PREFIX: Record<LogKind, string> = { chunks: 'c-', results: 'r-' };
const SUFFIX = '.seg';
const SEQ_DIGITS = 16;

export interface LogRecord {
  seq: number;
  /** Epoch ms: when the chunk was written (both logs carry the chunk's time). */
  timeMs: number;
  payload: Uint8Array;
}

export function segmentName(kind: LogKind, firstSeq: number): string {
  return `${PREFIX[kind]}${String(firstSeq).padStart(SEQ_DIGITS, '0')}${SUFFIX}`;
}

export function segmentPath(dir: string, kind: LogKind, firstSeq: number): string {
  return path.join(dir, segmentName(kind, firstSeq));
}

/** The kind and first seq a segment file's name encodes, or null for any other file. */
export function parseSegmentName(name: string): { kind: LogKind; firstSeq: number } | null {
  if (!name.endsWith(SUFFIX) || name.length !== 2 + SEQ_DIGITS + SUFFIX.length) return null;
  const kind = name.startsWith(PREFIX.chunks) ? 'chunks' : name.startsWith(PREFIX.results) ? 'results' : null;
  const digits = name.slice(2, 2 + SEQ_DIGITS);
  if (!kind || !/^\d+$/.test(digits)) return null;
  return { kind, firstSeq: Number(digits) };
}

/** The first seqs of a folder's segments of one kind, ascending. */
export function listSegments(names: readonly string[], kind: LogKind): number[] {
  const seqs: number[] = [];
  for (const n of names) {
    const p = parseSegmentName(n);
    if (p?.kind === kind) seqs.push(p.firstSeq);
  }
  return seqs.sort((a, b) => a - b);
}

/** Frames `records` into one buffer, ready for a single write. */
export function encodeRecords(records: readonly LogRecord[]): Buffer {
  let total = 0;
  for (const r of records) total += HEADER_BYTES + r.payload.byteLength;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const r of records) {
    const len = r.payload.byteLength;
    out.writeUInt32LE(len, off);
    out.writeDoubleLE(r.seq, off + 8);
    out.writeDoubleLE(r.timeMs, off + 16);
    out.set(r.payload, off + HEADER_BYTES);
    out.writeUInt32LE(checksum(out, off, len), off + 4);
    off += HEADER_BYTES + len;
  }
  return out;
}

function checksum(buf: Buffer, recordStart: number, payloadBytes: number): number {
  return crc32(buf.subarray(recordStart + 8, recordStart + HEADER_BYTES + payloadBytes));
}

export interface DecodedRecord extends LogRecord {
  /** Byte offset of the record's end in the decoded buffer. */
  end: number;
}

/**
 * Decodes whole, valid records from `buf` starting at `offset`, stopping at the first record
 * that is incomplete or fails its checksum (a torn tail) or whose seq does not follow the one
 * before it. `validEnd` is where the good records end: cut there on recovery.
 */
export function decodeRecords(buf: Buffer, offset = 0, expectSeq?: number): { records: DecodedRecord[]; validEnd: number; torn: boolean } {
  const records: DecodedRecord[] = [];
  let off = offset;
  let next = expectSeq;
  while (off < buf.byteLength) {
    if (buf.byteLength - off < HEADER_BYTES) return { records, validEnd: off, torn: true };
    const len = buf.readUInt32LE(off);
    if (len > MAX_PAYLOAD_BYTES || off + HEADER_BYTES + len > buf.byteLength) return { records, validEnd: off, torn: true };
    if (buf.readUInt32LE(off + 4) !== checksum(buf, off, len)) return { records, validEnd: off, torn: true };
    const seq = buf.readDoubleLE(off + 8);
    if (next !== undefined && seq !== next) return { records, validEnd: off, torn: true };
    next = seq + 1;
    const end = off + HEADER_BYTES + len;
    records.push({ seq, timeMs: buf.readDoubleLE(off + 16), payload: buf.subarray(off + HEADER_BYTES, end), end });
    off = end;
  }
  return { records, validEnd: off, torn: false };
}

/** Writes all of `buf` at the end of `fd` (writeSync may write less than asked). */
export function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.byteLength; ) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
}

/** Reads exactly `length` bytes at `position` of `fd` (fewer only at end of file). */
export function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/**
 * Checks every segment of a folder and cuts each at its first bad record (a write torn by a
 * crash); a segment with no good record is removed. Returns what was cut, for the log.
 */
export async function repairLogs(dir: string): Promise<{ segment: string; cutBytes: number }[]> {
  const cuts: { segment: string; cutBytes: number }[] = [];
  for (const name of await fs.promises.readdir(dir)) {
    const parsed = parseSegmentName(name);
    if (!parsed) continue;
    const file = path.join(dir, name);
    const buf = await fs.promises.readFile(file);
    const { validEnd } = decodeRecords(buf, 0, parsed.firstSeq);
    if (validEnd === buf.byteLength) continue;
    cuts.push({ segment: name, cutBytes: buf.byteLength - validEnd });
    if (validEnd === 0) await fs.promises.rm(file, { force: true });
    else await fs.promises.truncate(file, validEnd);
  }
  return cuts;
}

/**
 * Reads the records of a log with seq in [from, to], in order, from the segments on disk.
 * Returns null when `from` is older than the oldest segment kept (the window has passed it).
 */
export async function readLogRange(dir: string, kind: LogKind, from: number, to: number): Promise<LogRecord[] | null> {
  if (from > to) return [];
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  const segments = listSegments(names, kind);
  let first = -1;
  for (let i = 0; i < segments.length && segments[i]! <= from; i++) first = i;
  if (first < 0) return null;
  const out: LogRecord[] = [];
  for (let i = first; i < segments.length && segments[i]! <= to; i++) {
    const firstSeq = segments[i]!;
    const buf = await fs.promises.readFile(segmentPath(dir, kind, firstSeq)).catch(() => null);
    if (!buf) return null;
    for (const r of decodeRecords(buf, 0, firstSeq).records) {
      if (r.seq >= from && r.seq <= to) out.push({ seq: r.seq, timeMs: r.timeMs, payload: r.payload });
    }
  }
  // Every seq must be there: a hole means the window moved while we read.
  if (out.length !== to - from + 1 || out[0]?.seq !== from) return null;
  return out;
}
