import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecoderShelf } from '../../../src/pipelines/speech/decoder-shelf.js';

/** Stands for a loaded decoder: only its freeing is of interest to the shelf. */
class Loaded {
  static made = 0;
  readonly id = ++Loaded.made;
  frees = 0;
  free(): void {
    this.frees++;
  }
}

function shelf() {
  const reports: { idle: number; busy: number; loaded: number }[] = [];
  return { shelf: new DecoderShelf<Loaded>((idle, busy, loaded) => reports.push({ idle, busy, loaded })), reports };
}

const KEEP = { perThread: 1, idleMs: 60_000 };

describe('DecoderShelf', () => {
  it('lends a returned decoder to the next borrower with the same key, and loads for another key', () => {
    const { shelf: s, reports } = shelf();
    const a = s.borrow('k', () => new Loaded());
    s.giveBack('k', a, KEEP);
    assert.equal(s.borrow('k', () => assert.fail('loaded although one was idle')), a);
    assert.deepEqual(reports.map((r) => r.loaded), [1, 0, 0], 'one load told, then none');
    const b = s.borrow('other', () => new Loaded());
    assert.notEqual(b, a);
    assert.deepEqual({ idle: s.idle, busy: s.busy }, { idle: 0, busy: 2 });
    s.clear();
  });

  it('keeps at most perThread idle decoders, freeing the oldest; perThread 0 frees each at once', () => {
    const { shelf: s } = shelf();
    const [a, b, c] = [s.borrow('k', () => new Loaded()), s.borrow('k', () => new Loaded()), s.borrow('k', () => new Loaded())];
    s.giveBack('k', a, { perThread: 2, idleMs: 60_000 });
    s.giveBack('k', b, { perThread: 2, idleMs: 60_000 });
    s.giveBack('k', c, { perThread: 2, idleMs: 60_000 });
    assert.deepEqual([a.frees, b.frees, c.frees], [1, 0, 0]);
    assert.equal(s.borrow('k', () => new Loaded()), c, 'the newest first');
    s.giveBack('k', c, { perThread: 0, idleMs: 60_000 });
    assert.deepEqual([a.frees, b.frees, c.frees], [1, 1, 1], 'perThread 0 keeps none');
    assert.equal(s.idle, 0);
  });

  it('frees an idle decoder once idleMs pass, on its own timer', async () => {
    const { shelf: s, reports } = shelf();
    const a = s.borrow('k', () => new Loaded());
    s.giveBack('k', a, { perThread: 1, idleMs: 50 });
    assert.equal(a.frees, 0);
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (a.frees > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    assert.equal(a.frees, 1);
    assert.deepEqual(reports.at(-1), { idle: 0, busy: 0, loaded: 0 });
  });

  it('frees a discarded decoder and never lends it again', () => {
    const { shelf: s } = shelf();
    const a = s.borrow('k', () => new Loaded());
    s.discard(a);
    assert.equal(a.frees, 1);
    const b = s.borrow('k', () => new Loaded());
    assert.notEqual(b, a);
    s.giveBack('k', b, KEEP);
    s.clear();
    assert.equal(b.frees, 1);
  });
});
