import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openAudio } from '../../../src/pipelines/speech/audio-source.js';
import { eventually } from '../../helpers/server.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-audio-source-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every byte the source gives, read `maxBytes` at a time. */
async function readAll(source: ReturnType<typeof openAudio>, maxBytes: number): Promise<number> {
  let total = 0;
  for (let pcm = await source.read(maxBytes); pcm; pcm = await source.read(maxBytes)) total += pcm.length;
  return total;
}

describe('a file converted by sox', () => {
  it('gives all of its audio when reading starts after sox has already exited', async () => {
    // 0.3 s at 8 kHz in Sun .au: not recognizer PCM, so sox converts it, and small enough
    // that sox writes all of it into the pipe and exits before anything is read.
    const au = path.join(dir, 'tiny.au');
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', au, 'synth', '0.3', 'sine', '440']);
    const source = openAudio({ kind: 'sox', file: au });
    try {
      const pid = (source as unknown as { pid: number }).pid;
      await eventually(() => !fs.existsSync(`/proc/${pid}`), `sox ${pid} exited and was reaped`);
      // A few more turns of the event loop: whatever Node does with an exited child's pipes is done.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.equal(await readAll(source, 3200), 0.3 * 16_000 * 2, '0.3 s of 16 kHz 16-bit samples');
    } finally {
      await source.close();
    }
  });

  it('gives the same audio however small the reads', async () => {
    const au = path.join(dir, 'short.au');
    execFileSync('sox', ['-n', '-r', '22050', '-c', '2', au, 'synth', '1.5', 'sine', '300']);
    const source = openAudio({ kind: 'sox', file: au });
    try {
      assert.equal(await readAll(source, 202), 1.5 * 16_000 * 2);
    } finally {
      await source.close();
    }
  });

  it('names the file and sox\'s reason when sox cannot convert it', async () => {
    const bad = path.join(dir, 'bad.au');
    fs.writeFileSync(bad, Buffer.from('.snd not really audio'));
    const source = openAudio({ kind: 'sox', file: bad });
    try {
      await assert.rejects(readAll(source, 3200), /sox could not convert '.*bad\.au'/);
    } finally {
      await source.close();
    }
  });
});
