import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KEEP_MARKER, removeSpoolSync } from '../../src/sessions/spool.js';

describe('a spool folder is removed with one readdir, an unlink per file and one rmdir', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-spool-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  function spool(name: string, files: string[]): string {
    const dir = path.join(root, name);
    fs.mkdirSync(dir);
    for (const f of files) fs.writeFileSync(path.join(dir, f), Buffer.alloc(100, 1));
    return dir;
  }

  it('removes its segments, its keep marker and the folder, and nothing beside it', () => {
    const dir = spool('s1', ['chunks-000000000001.log', 'results-000000000001.log', 'results-000000000042.log', KEEP_MARKER]);
    const sibling = spool('s2', ['chunks-000000000001.log']);
    removeSpoolSync(dir);
    assert.equal(fs.existsSync(dir), false);
    assert.deepEqual(fs.readdirSync(sibling), ['chunks-000000000001.log']);
  });

  it('removes a folder that holds a folder too (the recursive way)', () => {
    const dir = spool('s3', ['chunks-000000000001.log']);
    fs.mkdirSync(path.join(dir, 'inner'));
    fs.writeFileSync(path.join(dir, 'inner', 'x'), 'x');
    removeSpoolSync(dir);
    assert.equal(fs.existsSync(dir), false);
  });

  it('a folder that is already gone is no error; a path it cannot remove says why', () => {
    removeSpoolSync(path.join(root, 'never-made'));
    assert.throws(() => removeSpoolSync(path.join(root, 'bad\u0000name')), /null bytes/);
  });
});
