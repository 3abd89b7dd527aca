import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../../helpers/server.js';
import { continuousHypothesis, joinWithPauses, librivoxClips, synthesize, transcribe, wordErrorRate } from '../../helpers/speech.js';

function rate(counts: { errors: number; words: number }[]): number {
  const errors = counts.reduce((n, c) => n + c.errors, 0);
  const words = counts.reduce((n, c) => n + c.words, 0);
  return errors / words;
}

describe('transcribe accuracy on real speech', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('transcribes the LibriVox clips with WER ≤ 40 %, within 2 points of pocketsphinx_continuous', async (t) => {
    const clips = librivoxClips();
    assert.equal(clips.length, 5);
    const ours = [];
    const theirs = [];
    for (const clip of clips) {
      const [heard, reference] = await Promise.all([transcribe(server, clip.file, { chunkMs: 500, partials: false }), continuousHypothesis(clip.file)]);
      ours.push(wordErrorRate(clip.reference, heard.text));
      theirs.push(wordErrorRate(clip.reference, reference));
    }
    const oursRate = rate(ours);
    const theirsRate = rate(theirs);
    const shown = `transcribe ${(oursRate * 100).toFixed(1)} %, pocketsphinx_continuous ${(theirsRate * 100).toFixed(1)} %`;
    t.diagnostic(shown);
    assert.ok(oursRate <= 0.4, shown);
    assert.ok(Math.abs(oursRate - theirsRate) <= 0.02, shown);
  });

  it('transcribes flite speech with WER ≤ 15 %, one final per sentence said between pauses', async (tc) => {
    const sentences = [
      'the weather today is sunny and warm',
      'please open the door and turn on the light',
      'i would like a cup of coffee',
      'we will meet again tomorrow morning',
      'she reads a book every night before bed',
    ];
    const dir = fs.mkdtempSync(path.join(server.fileRoot, 'flite-'));
    const parts = await Promise.all(sentences.map((s, i) => synthesize(s, dir, `s${i}`)));
    const file = await joinWithPauses(parts, 1.5, path.join(dir, 'sentences.wav'));
    const t = await transcribe(server, file, { chunkMs: 200 });
    const wer = wordErrorRate(sentences.join(' '), t.text);
    tc.diagnostic(`WER ${((wer.errors / wer.words) * 100).toFixed(1)} %`);
    assert.ok(wer.errors / wer.words <= 0.15, `WER ${((wer.errors / wer.words) * 100).toFixed(1)} %: heard ${JSON.stringify(t.text)}`);
    assert.equal(t.finals.length, sentences.length, `finals: ${JSON.stringify(t.finals.map((f) => f.text))}`);
    for (let i = 1; i < t.finals.length; i++) {
      assert.ok(t.finals[i]!.start >= t.finals[i - 1]!.end + 1, 'each utterance starts after the pause that ended the one before');
    }
  });
});
