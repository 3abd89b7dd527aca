import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanText, cleanWord } from '../../../src/pipelines/speech/recognizer.js';
import { isRecognizerPcm, readWavLayout, wavHeader } from '../../../src/pipelines/speech/wav.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-wav-'));
function file(name: string, bytes: Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

function chunk(id: string, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

describe('WAV header reading', () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds the data chunk after other chunks of odd length, padded to even', () => {
    const canonical = wavHeader(8, 16_000);
    const fmt = canonical.subarray(12, 36);
    const riff = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'), chunk('LIST', Buffer.from('abc')), fmt, chunk('data', Buffer.alloc(8, 1))]);
    const layout = readWavLayout(file('list.wav', riff))!;
    assert.equal(layout.dataOffset, riff.length - 8);
    assert.equal(layout.dataBytes, 8);
    assert.ok(isRecognizerPcm(layout.format, 16_000));
  });

  it('clamps a data length larger than the file (streaming writers) to what is there', () => {
    const h = wavHeader(0xffffffff - 36, 16_000);
    const layout = readWavLayout(file('stream.wav', Buffer.concat([h, Buffer.alloc(100)])))!;
    assert.equal(layout.dataBytes, 100);
  });

  it('resolves WAVE_FORMAT_EXTENSIBLE to its subformat and tells other formats apart', () => {
    const fmt = Buffer.alloc(40);
    fmt.writeUInt16LE(0xfffe, 0);
    fmt.writeUInt16LE(2, 2);
    fmt.writeUInt32LE(48_000, 4);
    fmt.writeUInt16LE(8, 12);
    fmt.writeUInt16LE(32, 14);
    fmt.writeUInt16LE(3, 24); // IEEE float
    const riff = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'), chunk('fmt ', fmt), chunk('data', Buffer.alloc(16))]);
    const layout = readWavLayout(file('ext.wav', riff))!;
    assert.deepEqual(layout.format, { audioFormat: 3, channels: 2, sampleRateHz: 48_000, bitsPerSample: 32 });
    assert.equal(isRecognizerPcm(layout.format, 16_000), false);
  });

  it('says a file that is not RIFF/WAVE is none (sox may read it), and names the defect of a broken one', () => {
    assert.equal(readWavLayout(file('text.wav', Buffer.from('hello world, not audio'))), null);
    assert.equal(readWavLayout(file('empty.wav', Buffer.alloc(0))), null);
    assert.throws(() => readWavLayout(file('nofmt.wav', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'), chunk('data', Buffer.alloc(4))]))), /data chunk comes before any fmt chunk/);
    const short = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'), chunk('fmt ', Buffer.alloc(8))]);
    assert.throws(() => readWavLayout(file('shortfmt.wav', short)), /fmt chunk is 8 bytes/);
    const badAlign = wavHeader(4, 16_000);
    badAlign.writeUInt16LE(4, 32);
    assert.throws(() => readWavLayout(file('align.wav', Buffer.concat([badAlign, Buffer.alloc(4)]))), /4 bytes per frame, but 1 channel\(s\) of 16 bits need 2/);
  });
});

describe('recognizer text', () => {
  it('drops filler tokens and pronunciation variants', () => {
    assert.equal(cleanText('<s> <sil> go(2) forward [NOISE] ++UH++ ten meters </s>'), 'go forward ten meters');
    assert.equal(cleanText('<sil> [NOISE]'), null);
    assert.equal(cleanText(null), null);
    assert.equal(cleanWord("don't"), "don't");
    assert.equal(cleanWord('<unk>'), null);
  });
});
