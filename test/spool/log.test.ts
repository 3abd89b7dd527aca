import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LogAppender, type LogPolicy } from '../../src/spool/appender.js';
import { ChunkReader } from '../../src/spool/chunk-reader.js';
import { markRolledBack, publishChunks, publishConsumed, publishResults, removeLeftSync } from '../../src/spool/progress.js';
import { FLAG, FlagsSlab } from '../../src/pool/flags.js';
import {
  decodeRecords,
  encodeRecords,
  listSegments,
  parseSegmentName,
  readLogRange,
  repairLogs,
  segmentName,
  type LogRecord,
} from '../../src/spool/log.js';

const rec = (seq: number, text = `chunk ${seq}`): LogRecord => ({ seq, timeMs: 1000 + seq, payload: Buffer.from(text) });
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-log-'));
const policy = (over: Partial<LogPolicy> = {}): LogPolicy => ({
  segmentBytes: 1 << 20,
  fsync: 'none',
  fsyncIntervalMs: 200,
  retainBytes: 1 << 20,
  retainMs: 60_000,
  ageRollMinBytes: 0,
  ...over,
});

describe('spool log format', () => {
  it('round-trips framed records, many per buffer', () => {
    const records = [rec(7), rec(8, ''), rec(9, 'x'.repeat(70_000))];
    const { records: back, validEnd, torn } = decodeRecords(encodeRecords(records), 0, 7);
    assert.equal(torn, false);
    assert.equal(validEnd, encodeRecords(records).byteLength);
    assert.deepEqual(back.map((r) => [r.seq, r.timeMs, Buffer.from(r.payload).toString()]), records.map((r) => [r.seq, r.timeMs, Buffer.from(r.payload).toString()]));
  });

  it('stops at a torn tail, a flipped byte, or a seq out of order', () => {
    const buf = encodeRecords([rec(1), rec(2), rec(3)]);
    const twoEnd = decodeRecords(buf).records[1]!.end;
    assert.deepEqual(decodeRecords(buf.subarray(0, buf.byteLength - 3)).records.map((r) => r.seq), [1, 2]);
    assert.equal(decodeRecords(buf.subarray(0, buf.byteLength - 3)).validEnd, twoEnd);
    const flipped = Buffer.from(buf);
    flipped[twoEnd + 30] = flipped[twoEnd + 30]! ^ 0xff; // inside record 3's payload
    assert.deepEqual(decodeRecords(flipped).records.map((r) => r.seq), [1, 2]);
    assert.deepEqual(decodeRecords(buf, 0, 2).records, [], 'a segment must begin with its named seq');
  });

  it('names segments by their first seq and lists them in order', () => {
    assert.deepEqual(parseSegmentName(segmentName('chunks', 42)), { kind: 'chunks', firstSeq: 42 });
    assert.equal(parseSegmentName('c-12.seg'), null);
    assert.equal(parseSegmentName('.keep'), null);
    const names = [segmentName('results', 9), segmentName('chunks', 10), segmentName('results', 1), 'other'];
    assert.deepEqual(listSegments(names, 'results'), [1, 9]);
  });

  it('repair cuts each segment at its first bad record and removes one with none', async () => {
    const dir = tmpDir();
    const good = encodeRecords([rec(1), rec(2)]);
    fs.writeFileSync(path.join(dir, segmentName('chunks', 1)), Buffer.concat([good, encodeRecords([rec(3)]).subarray(0, 10)]));
    fs.writeFileSync(path.join(dir, segmentName('results', 5)), Buffer.from('garbage'));
    const cuts = await repairLogs(dir);
    assert.deepEqual(cuts.map((c) => c.segment).sort(), [segmentName('chunks', 1), segmentName('results', 5)].sort());
    assert.deepEqual(fs.readFileSync(path.join(dir, segmentName('chunks', 1))), good);
    assert.equal(fs.existsSync(path.join(dir, segmentName('results', 5))), false);
  });
});

describe('appending and reading a session log', () => {
  it('rolls to a new segment named by its first seq when one is full, and reads across segments', () => {
    const dir = tmpDir();
    const flags = new FlagsSlab(1).alloc()!.flags;
    flags.ints[FLAG.READ_SEGMENT] = 1;
    const appender = new LogAppender(dir, 'chunks', flags, policy({ segmentBytes: 100 }));
    for (let seq = 1; seq <= 6; seq++) appender.append([rec(seq, 'y'.repeat(40))]);
    appender.close();
    publishChunks(flags, appender.chunkEnd);
    assert.equal(flags.ints[FLAG.COMMITTED], 6);
    const segments = listSegments(fs.readdirSync(dir), 'chunks');
    assert.ok(segments.length >= 3, `several segments (${segments})`);
    assert.equal(segments[0], 1);
    const reader = new ChunkReader(dir, flags);
    for (let seq = 1; seq <= 6; seq++) {
      const c = reader.read(seq);
      assert.equal(c.seq, seq);
      assert.equal(c.payload.toString(), 'y'.repeat(40));
      reader.consumed(c);
    }
    reader.close();
    const mark = reader.takeMark();
    publishConsumed(flags, mark);
    removeLeftSync(dir, false, mark.left);
    assert.deepEqual(listSegments(fs.readdirSync(dir), 'chunks'), [segments.at(-1)], 'segments the consumer left are removed');
    assert.equal(flags.ints[FLAG.CONSUMED], 6);
  });

  it('a writer after a rollback cuts what was written past the published end', () => {
    const dir = tmpDir();
    const flags = new FlagsSlab(1).alloc()!.flags;
    flags.ints[FLAG.READ_SEGMENT] = 1;
    const first = new LogAppender(dir, 'chunks', flags, policy({ segmentBytes: 100 }));
    first.append([rec(1), rec(2)]);
    first.close();
    publishChunks(flags, first.chunkEnd);
    // A step writes 3..6 (rolling to a new segment) but its answer never arrives.
    const lost = new LogAppender(dir, 'chunks', flags, policy({ segmentBytes: 100 }));
    for (let seq = 3; seq <= 6; seq++) lost.append([rec(seq, 'lost'.repeat(10))]);
    lost.close();
    markRolledBack(flags);
    const again = new LogAppender(dir, 'chunks', flags, policy({ segmentBytes: 100 }));
    again.append([rec(3, 'again')]);
    again.close();
    publishChunks(flags, again.chunkEnd);
    const reader = new ChunkReader(dir, flags);
    assert.deepEqual([1, 2, 3].map((seq) => reader.read(seq).payload.toString()), ['chunk 1', 'chunk 2', 'again']);
    reader.close();
    assert.deepEqual(listSegments(fs.readdirSync(dir), 'chunks'), [1], 'the rolled-back segment is gone');
    assert.equal(flags.ints[FLAG.CHUNKS_DIRTY], 0);
  });

  it('keeps results within the byte window and says where the window begins', async () => {
    const dir = tmpDir();
    const flags = new FlagsSlab(1).alloc()!.flags;
    const appender = new LogAppender(dir, 'results', flags, policy({ segmentBytes: 200, retainBytes: 400 }));
    for (let seq = 1; seq <= 40; seq++) appender.append([rec(seq, 'z'.repeat(30))]);
    appender.close();
    publishResults(flags, appender.resultEnd);
    const from = flags.ints[FLAG.RESULT_WINDOW_FROM]!;
    assert.ok(from > 1, `old results expired (window from ${from})`);
    assert.equal(await readLogRange(dir, 'results', 1, 40), null, 'before the window: a gap');
    const kept = await readLogRange(dir, 'results', from, 40);
    assert.deepEqual(kept!.map((r) => r.seq), Array.from({ length: 41 - from }, (_, i) => from + i));
  });

  it('closes a results segment for its age only once it holds ageRollMinBytes, or at once with 0', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Each record is 24 + 30 bytes; a segment is old after retainMs / 4 = 10 ms.
    const segmentsAfter = async (minBytes: number, waits: number): Promise<number[]> => {
      const dir = tmpDir();
      const flags = new FlagsSlab(1).alloc()!.flags;
      const appender = new LogAppender(dir, 'results', flags, policy({ retainMs: 40, retainBytes: 1 << 20, ageRollMinBytes: minBytes }));
      for (let seq = 1; seq <= waits; seq++) {
        appender.append([rec(seq, String(seq).padStart(30, '.'))]);
        await sleep(15);
      }
      appender.close();
      return listSegments(fs.readdirSync(dir), 'results');
    };
    // Old but small (54 … 162 bytes, under 200): one segment, its results kept past the window.
    assert.deepEqual(await segmentsAfter(200, 3), [1], 'no segment closed for age while under 200 bytes');
    // Past 200 bytes after four records: the fifth append finds it old and full enough, and begins 5.
    const rolled = await segmentsAfter(200, 6);
    assert.ok(rolled.includes(5) && !rolled.includes(2) && !rolled.includes(3) && !rolled.includes(4), `segments: ${rolled}`);
    // 0: for its age alone, every append after 10 ms begins a segment (older ones expire at 40 ms).
    const byAge = await segmentsAfter(0, 3);
    assert.deepEqual(byAge.slice(-2), [2, 3], `segments: ${byAge}`);
  });

  it('reuses a segment that left the window as the next one, emptied, rather than creating a file', async () => {
    const dir = tmpDir();
    const flags = new FlagsSlab(1).alloc()!.flags;
    // Each record is 24 + 30 bytes: three to a segment; 400 bytes keep about two segments.
    const appender = new LogAppender(dir, 'results', flags, policy({ segmentBytes: 200, retainBytes: 400 }));
    const begunAt = new Map<number, number>();
    for (let seq = 1; seq <= 60; seq++) {
      if (seq % 3 === 1) {
        // A segment begins with this record: note when, well apart from the last one.
        await new Promise((r) => setTimeout(r, 15));
        begunAt.set(seq, Date.now());
      }
      appender.append([rec(seq, String(seq).padStart(30, '.'))]);
    }
    appender.close();
    publishResults(flags, appender.resultEnd);
    const segments = listSegments(fs.readdirSync(dir), 'results');
    assert.ok(segments.length >= 2 && segments.length <= 4, `segments left: ${segments}`);
    // A file keeps the birth time of its creation through a rename: each segment kept was a file
    // made for a segment three or more before it, not one created when it began.
    for (const s of segments) {
      const born = fs.statSync(path.join(dir, segmentName('results', s))).birthtimeMs;
      assert.ok(born > 0, 'the file system reports birth times (statx), which this test reads');
      assert.ok(born < begunAt.get(s)! - 10, `segment ${s} is a file born ${begunAt.get(s)! - born} ms before it began`);
    }
    const from = flags.ints[FLAG.RESULT_WINDOW_FROM]!;
    assert.equal(from, segments[0], 'the window begins at the oldest segment kept');
    const kept = await readLogRange(dir, 'results', from, 60);
    assert.deepEqual(
      kept!.map((r) => [r.seq, Buffer.from(r.payload).toString()]),
      Array.from({ length: 61 - from }, (_, i) => [from + i, String(from + i).padStart(30, '.')]),
      'every record in the window reads back as written, none of a recycled segment’s old ones',
    );
    for (const s of segments) {
      const { records, torn } = decodeRecords(fs.readFileSync(path.join(dir, segmentName('results', s))), 0, s);
      assert.equal(torn, false, `segment ${s} holds only its own records`);
      assert.equal(records[0]?.seq, s);
    }
  });
});
