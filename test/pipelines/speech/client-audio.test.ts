import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientAudioDecoder, Resampler } from '../../../src/pipelines/speech/client-audio.js';

function tone(freqHz: number, rateHz: number, samples: number, amplitude = 0.5): Float64Array {
  return Float64Array.from({ length: samples }, (_, i) => amplitude * Math.sin((2 * Math.PI * freqHz * i) / rateHz));
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Largest difference between `a` and `b` over [from, to). */
function maxError(a: Float64Array, b: Float64Array, from: number, to: number): number {
  let worst = 0;
  for (let i = from; i < to; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function peak(x: Float64Array, from: number, to: number): number {
  let p = 0;
  for (let i = from; i < to; i++) p = Math.max(p, Math.abs(x[i]!));
  return p;
}

describe('client audio resampling', () => {
  for (const [inRate, freq] of [
    [8000, 440],
    [48000, 1000],
    [44100, 3000],
  ] as const) {
    it(`turns a ${freq} Hz tone at ${inRate} Hz into the same tone at 16 kHz, as long as the input`, () => {
      const seconds = 0.5;
      const r = new Resampler(inRate, 16000);
      const out = concat([r.push(tone(freq, inRate, inRate * seconds)), r.flush()]);
      assert.equal(out.length, Math.ceil((inRate * seconds * 16000) / inRate));
      const expected = tone(freq, 16000, out.length);
      // Away from the edges (where the input starts and ends in silence) the tone is exact to 1 %.
      assert.ok(maxError(out, expected, 200, out.length - 200) < 0.005, `error ${maxError(out, expected, 200, out.length - 200)}`);
    });
  }

  it('gives the same samples however the input is cut into frames', () => {
    const input = tone(700, 48000, 24000);
    const whole = new Resampler(48000, 16000);
    const once = concat([whole.push(input), whole.flush()]);
    const pieces = new Resampler(48000, 16000);
    const parts: Float64Array[] = [];
    for (let at = 0, n = 1; at < input.length; at += n, n = (n * 7 + 3) % 1000 + 1) parts.push(pieces.push(input.subarray(at, at + n)));
    parts.push(pieces.flush());
    const cut = concat(parts);
    assert.equal(cut.length, once.length);
    assert.ok(maxError(cut, once, 0, once.length) < 1e-12, 'no click at a frame boundary');
  });

  it('removes what 16 kHz cannot carry instead of folding it into the speech band', () => {
    const r = new Resampler(48000, 16000);
    // 12 kHz would alias to 4 kHz without the low-pass.
    const out = concat([r.push(tone(12000, 48000, 24000)), r.flush()]);
    assert.ok(peak(out, 200, out.length - 200) < 0.005, `aliased peak ${peak(out, 200, out.length - 200)}`);
  });

  it('decodes f32le to s16le, clipping beyond -1..1', () => {
    const f = Buffer.alloc(16);
    [0.5, -1, 2, -3].forEach((v, i) => f.writeFloatLE(v, i * 4));
    assert.deepEqual([...new ClientAudioDecoder(16000, 'f32le').decode(f)], [16384, -32768, 32767, -32768]);
    const s = Buffer.alloc(4);
    s.writeInt16LE(1234, 0);
    s.writeInt16LE(-5, 2);
    assert.deepEqual([...new ClientAudioDecoder(16000, 's16le').decode(s)], [1234, -5]);
  });
});
