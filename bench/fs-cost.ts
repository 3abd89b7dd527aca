/**
 * The file-system floors of the spool, measured on one thread with nothing else around:
 *
 * - a file per chunk: the calls a step producer and consumer make for one chunk today
 *   (open(<seq>.tmp, 'w') + write + close, rename to <seq>.chunk, readFileSync, unlink);
 * - an appended record: one chunk framed as a log record (length u32, seq u64, crc32 u32, then
 *   the payload, little-endian) appended to an open segment file, with one writeSync per batch of
 *   N records (N = 1 is one write per record); the same records read back N per readSync, each
 *   checked against its crc32 and decoded to text (what a consumer right behind its producer
 *   pays, from the page cache); and the appends again with one fdatasync per write (what a
 *   durable spool pays per batch).
 *
 * Each floor is given in µs of CPU (user + system of this process) and of wall time per chunk.
 * Sessions are simulated as `sessions` folders (or open segments) used round-robin, as a crowd's.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { removeSpoolSync, removeTreeSync } from '../src/sessions/spool.js';

export interface Cost {
  cpuUs: number;
  wallUs: number;
}

export type RecordOp = 'append' | 'read' | 'append+fdatasync';

export interface RecordCost {
  op: RecordOp;
  /** Records per writeSync / readSync. */
  batch: number;
  records: number;
  perRecord: Cost;
}

export interface FsFloor {
  dir: string;
  fsType: string;
  sessions: number;
  /** A file per chunk: the whole, and each call timed alone (each carries ~1 µs of clock reading). */
  chunk: { chunks: number; perChunk: Cost; calls: Record<string, Cost> };
  /** Framed record size in bytes (header + payload). */
  recordBytes: number;
  records: RecordCost[];
  /**
   * A stopped session's spool folder (two segment files) removed, per folder: the recursive rm the
   * service used before (an rmdir that fails, an lstat per entry, a readdir, the unlinks, the
   * rmdir) and the service's own removal (sessions/spool.ts removeSpoolSync).
   */
  removal: { spools: number; recursive: Cost; flat: Cost };
}

export interface FsFloorOptions {
  /** Chunks through the file-per-chunk calls. */
  chunks: number;
  /** Records appended per batch size without fdatasync (at least 1,024 writes' worth). */
  records: number;
  sessions: number;
  batches: number[];
  /** Bound on each fdatasync variant, ms (its record count is what fits, up to `records`). */
  syncBudgetMs: number;
  /** Spool folders removed each way. */
  spools: number;
}

export const DEFAULT_FS_FLOOR: FsFloorOptions = { chunks: 20_000, records: 65_536, sessions: 20, batches: [1, 16, 64, 256], syncBudgetMs: 1000, spools: 1000 };

/** The payload: the demo pipeline's chunk text, as one of its chunks reads. */
const TEXT = `Data from producer #1 at ${(Date.now() / 1000).toFixed(3)}`;
export const HEADER_BYTES = 4 + 8 + 4;
const RECORD_BYTES = HEADER_BYTES + Buffer.byteLength(TEXT);

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Runs `fn`, returning its CPU and wall µs. */
function timed(fn: () => void): Cost {
  const c0 = cpuUs();
  const w0 = performance.now();
  fn();
  return { cpuUs: cpuUs() - c0, wallUs: (performance.now() - w0) * 1000 };
}

const per = (c: Cost, n: number): Cost => ({ cpuUs: c.cpuUs / n, wallUs: c.wallUs / n });

/** Measures both floors in a fresh folder under `root` (removed afterwards). */
export function measureFsFloor(root: string, opts: FsFloorOptions = DEFAULT_FS_FLOOR): FsFloor {
  if (typeof zlib.crc32 !== 'function') throw new Error(`fs-floor needs zlib.crc32 (Node ≥ 20.15); this is Node ${process.version}`);
  fs.mkdirSync(root, { recursive: true });
  const base = fs.mkdtempSync(path.join(root, 'fs-floor-'));
  try {
    const chunk = filePerChunk(base, opts);
    const records: RecordCost[] = [];
    for (const batch of opts.batches) {
      const appended = appendRecords(base, opts, batch, false);
      records.push(appended.cost, readRecords(appended.files, batch));
    }
    for (const batch of opts.batches) records.push(appendRecords(base, opts, batch, true).cost);
    const removal = {
      spools: opts.spools,
      recursive: removeSpools(base, opts.spools, 'recursive', removeTreeSync),
      flat: removeSpools(base, opts.spools, 'flat', removeSpoolSync),
    };
    return { dir: root, fsType: fsTypeOf(root), sessions: opts.sessions, chunk, recordBytes: RECORD_BYTES, records, removal };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/** Makes `count` spool-like folders (a chunks and a results segment each), then removes them with `remove`: CPU and wall per folder. */
function removeSpools(base: string, count: number, name: string, remove: (dir: string) => void): Cost {
  const dirs = Array.from({ length: count }, (_, i) => path.join(base, `spool-${name}-${i}`));
  for (const d of dirs) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'chunks-000000000001.log'), Buffer.alloc(20 * RECORD_BYTES, 1));
    fs.writeFileSync(path.join(d, 'results-000000000001.log'), Buffer.alloc(20 * RECORD_BYTES, 2));
  }
  return per(timed(() => dirs.forEach(remove)), count);
}

function filePerChunk(base: string, { chunks, sessions }: FsFloorOptions): FsFloor['chunk'] {
  const dirs = Array.from({ length: sessions }, (_, i) => path.join(base, `chunks-s${i}`));
  for (const d of dirs) fs.mkdirSync(d);
  const name = (seq: number, ext: string) => `${String(seq).padStart(12, '0')}.${ext}`;
  const calls = ['open+write+close', 'rename', 'read', 'unlink'] as const;
  const split = Object.fromEntries(calls.map((c) => [c, { cpuUs: 0, wallUs: 0 }])) as Record<(typeof calls)[number], Cost>;
  const run = (count: number, byCall: boolean) => {
    const step = byCall
      ? (call: (typeof calls)[number], fn: () => void) => {
          const c = timed(fn);
          split[call].cpuUs += c.cpuUs;
          split[call].wallUs += c.wallUs;
        }
      : (_: string, fn: () => void) => fn();
    for (let seq = 1; seq <= count; seq++) {
      const dir = dirs[seq % sessions]!;
      const tmp = path.join(dir, name(seq, 'tmp'));
      const file = path.join(dir, name(seq, 'chunk'));
      step('open+write+close', () => {
        const fd = fs.openSync(tmp, 'w');
        fs.writeSync(fd, TEXT);
        fs.closeSync(fd);
      });
      step('rename', () => fs.renameSync(tmp, file));
      step('read', () => fs.readFileSync(file, 'utf8'));
      step('unlink', () => fs.unlinkSync(file));
    }
  };
  run(Math.min(1000, chunks), false); // warm-up, not counted
  // The total without the per-call clocks (getrusage is a syscall too), then the split.
  const total = timed(() => run(chunks, false));
  run(chunks, true);
  return { chunks, perChunk: per(total, chunks), calls: Object.fromEntries(calls.map((c) => [c, per(split[c], chunks)])) };
}

/** Frames one record at `offset` of `buf`; returns its length in bytes. */
export function frameRecord(buf: Buffer, offset: number, seq: number, text: string): number {
  const payloadBytes = buf.write(text, offset + HEADER_BYTES, 'utf8');
  buf.writeUInt32LE(payloadBytes, offset);
  buf.writeUInt32LE(seq % 0x1_0000_0000, offset + 4);
  buf.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), offset + 8);
  buf.writeUInt32LE(zlib.crc32(buf.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + payloadBytes)), offset + 12);
  return HEADER_BYTES + payloadBytes;
}

/** Appends records to one open segment per session, round-robin; returns the cost and the segments. */
function appendRecords(base: string, opts: FsFloorOptions, batch: number, sync: boolean): { cost: RecordCost; files: string[] } {
  const dir = path.join(base, `append-${batch}${sync ? '-sync' : ''}`);
  fs.mkdirSync(dir);
  // One open segment per session, named by its first seq as a log's would be.
  const files = Array.from({ length: opts.sessions }, (_, i) => path.join(dir, `s${i}-${'1'.padStart(20, '0')}.log`));
  const fds = files.map((f) => fs.openSync(f, 'a'));
  const scratch = Buffer.allocUnsafe(batch * RECORD_BYTES);
  const seqs = new Array<number>(opts.sessions).fill(0);
  let turn = 0;
  /** One batch: `batch` records for the next session, one write (and one fdatasync). */
  const writeBatch = () => {
    const s = turn++ % opts.sessions;
    let bytes = 0;
    for (let i = 0; i < batch; i++) bytes += frameRecord(scratch, bytes, ++seqs[s]!, TEXT);
    fs.writeSync(fds[s]!, scratch, 0, bytes);
    if (sync) fs.fdatasyncSync(fds[s]!);
  };
  try {
    const warmup = sync ? 4 : Math.max(1, Math.floor(1000 / batch));
    for (let i = 0; i < warmup; i++) writeBatch(); // warm-up, not counted
    // At least 1,024 writes, so the large batches run long enough for the CPU clock's resolution.
    const batches = Math.max(1024, Math.floor(opts.records / batch));
    let done = 0;
    const cost = timed(() => {
      const deadline = sync ? performance.now() + opts.syncBudgetMs : Number.POSITIVE_INFINITY;
      while (done < batches && performance.now() < deadline) {
        writeBatch();
        done++;
      }
    });
    return { cost: { op: sync ? 'append+fdatasync' : 'append', batch, records: done * batch, perRecord: per(cost, done * batch) }, files };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/** Reads every record of the segments back, `batch` records' bytes per readSync, checking each. */
function readRecords(files: string[], batch: number): RecordCost {
  const buf = Buffer.allocUnsafe(batch * RECORD_BYTES);
  let records = 0;
  const cost = timed(() => {
    for (const file of files) {
      const fd = fs.openSync(file, 'r');
      try {
        for (let position = 0; ; ) {
          const got = fs.readSync(fd, buf, 0, buf.length, position);
          let off = 0;
          while (off + HEADER_BYTES <= got) {
            const payloadBytes = buf.readUInt32LE(off);
            const end = off + HEADER_BYTES + payloadBytes;
            if (end > got) break; // the rest of this record comes with the next read
            if (zlib.crc32(buf.subarray(off + HEADER_BYTES, end)) !== buf.readUInt32LE(off + 12)) {
              throw new Error(`fs-floor: a record read back from ${file} fails its checksum`);
            }
            buf.toString('utf8', off + HEADER_BYTES, end); // the consumer's chunk.text()
            records++;
            off = end;
          }
          if (off === 0) break; // end of the segment
          position += off;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  });
  return { op: 'read', batch, records, perRecord: per(cost, records) };
}

/** The file system type of the mount holding `dir`, from /proc/mounts (longest matching mount point). */
export function fsTypeOf(dir: string): string {
  const abs = fs.realpathSync(dir);
  let best = { point: '', type: '?' };
  try {
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, point, type] = line.split(' ');
      if (!point || !type) continue;
      const inside = abs === point || abs.startsWith(point.endsWith('/') ? point : `${point}/`);
      if (inside && point.length > best.point.length) best = { point, type };
    }
  } catch {
    // Not Linux: the type stays unknown.
  }
  return best.type;
}
