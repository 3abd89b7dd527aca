/**
 * The objects made for every step share one hidden class (V8's map), whichever session they are
 * for. In Node 20's V8, an object made by spreading another and adding keys (`{ ...ref, kind }`)
 * gets a map of its own once that spread has run a few times: each session's step task had its
 * own, and every store into one (a step's answer taken in) missed V8's inline caches
 * (docs/PERFORMANCE.md, "One hidden class per task"). V8's own %HaveSameMap says whether two
 * objects share a map.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { describe, it } from 'node:test';
import { consumeStepTask, produceStepTask, type StepSessionRef } from '../../src/pool/messages.js';
import { FlagsSlab } from '../../src/pool/flags.js';
import { ChunkReader } from '../../src/spool/chunk-reader.js';

v8.setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/** How many of `objects` have a map other than the first one's. */
function otherMaps(objects: object[]): number {
  return objects.filter((o) => !haveSameMap(o, objects[0]!)).length;
}

/** Sessions' refs as session.ts makes them: an id, a flags slot, the description's bytes. */
const refs: StepSessionRef[] = Array.from({ length: 200 }, (_, i) => ({
  sessionId: `session-${i}`,
  flagsSlot: i,
  session: new Uint8Array(v8.serialize({ module: `/pipelines/p${i}.js`, n: i })),
}));

describe('one hidden class per kind of step object', () => {
  it('the spread this replaces does make a map per object here (if not, the builders may go)', () => {
    const spread = refs.map((ref) => ({ ...ref, kind: 'consume-step', state: undefined, seqs: [] }));
    const other = otherMaps(spread);
    assert.ok(other > 100, `spread objects with other maps: ${other} of ${spread.length}`);
  });

  it("every session's produce task shares one map, as a new task and as one handed to a step thread", () => {
    const fresh = refs.map((ref) =>
      produceStepTask(ref, { state: undefined, nextSeq: 1, consumeAfter: false, consumerState: undefined, roomChunks: 0, roomBytes: 0 }),
    );
    // What a step's answer writes into the task (sides.ts #take), then the task handed to a step
    // thread with its consumer lent (sides.ts #adoptOrNext).
    fresh.forEach((t, i) => {
      t.state = { words: i, at: `t${i}` };
      t.nextSeq = i * 3 + 1;
    });
    const handed = fresh.map((t, i) =>
      produceStepTask(t, { state: t.state, nextSeq: t.nextSeq, consumeAfter: true, consumerState: [i], roomChunks: 4096, roomBytes: 1 << 20 }),
    );
    assert.equal(otherMaps([...fresh, ...handed]), 0);
    assert.deepEqual(handed[7], {
      kind: 'produce-step',
      sessionId: 'session-7',
      flagsSlot: 7,
      session: refs[7]!.session,
      state: { words: 7, at: 't7' },
      nextSeq: 22,
      consumeAfter: true,
      consumerState: [7],
      roomChunks: 4096,
      roomBytes: 1 << 20,
    });
  });

  it("every session's consume task shares one map", () => {
    const tasks = refs.map((ref, i) => consumeStepTask(ref, i % 2 === 0 ? undefined : { n: i }, [i, i + 1]));
    assert.equal(otherMaps(tasks), 0);
    assert.deepEqual(tasks[3], { kind: 'consume-step', sessionId: 'session-3', flagsSlot: 3, session: refs[3]!.session, state: { n: 3 }, seqs: [3, 4] });
  });

  it("a chunk reader's read marks share one map, step after step", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-maps-'));
    try {
      const reader = new ChunkReader(dir, new FlagsSlab(1).alloc()!.flags);
      const marks = Array.from({ length: 100 }, () => reader.takeMark());
      reader.close();
      assert.equal(otherMaps(marks), 0);
      assert.deepEqual(Object.keys(marks[99]!), ['consumed', 'segment', 'offset', 'left']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
