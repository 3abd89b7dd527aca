import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../../helpers/client.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../../helpers/server.js';
import { GOFORWARD_RAW, transcribe, wavFromRaw } from '../../helpers/speech.js';

const FILLER = /<|>|\[|\]|\+\+|\(\d+\)/;

describe('transcribe pipeline on files', () => {
  let server: TestServer;
  let goforward: string;
  before(async () => {
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
    goforward = wavFromRaw(GOFORWARD_RAW, path.join(server.fileRoot, 'goforward.wav'));
  });
  after(() => server.close());

  for (const chunkMs of [100, 1000]) {
    it(`hears exactly "go forward ten meters" in goforward.raw at chunkMs ${chunkMs}`, async () => {
      const t = await transcribe(server, goforward, { chunkMs });
      assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
      // 2.7 s of audio: one result per chunk, and one more for the end of the audio.
      assert.equal(t.transcripts.length, Math.ceil(fs.statSync(GOFORWARD_RAW).size / 32 / chunkMs) + 1);
      const [final] = t.finals;
      assert.ok(final!.start > 0 && final!.start < final!.end && final!.end < 2.8, `times ${final!.start}–${final!.end} s lie within the audio`);
      assert.equal(final!.words, undefined, 'no word timings unless asked');
      const partials = t.partials.filter((p): p is string => p !== null);
      if (chunkMs === 100) {
        assert.ok(partials.length >= 5, `partials came as audio arrived: ${JSON.stringify(t.partials)}`);
        assert.ok(partials.some((p) => p.startsWith('go') && p.split(' ').length < 4), 'an early partial holds the first words only');
      }
      assert.equal(t.partials.at(-1), null, 'no partial once the utterance is final');
      for (const text of partials) assert.doesNotMatch(text, FILLER);
    });
  }

  it('gives each final its words with times and confidences when asked, never a filler', async () => {
    const t = await transcribe(server, goforward, { chunkMs: 300, words: true, partials: false });
    assert.ok(t.partials.every((p) => p === null), 'partials off: "partial" is null on every result');
    const [final] = t.finals;
    assert.deepEqual(final!.words!.map((w) => w.word), ['go', 'forward', 'ten', 'meters']);
    for (const [i, w] of final!.words!.entries()) {
      assert.ok(w.start < w.end && w.conf >= 0 && w.conf <= 1, JSON.stringify(w));
      if (i > 0) assert.ok(w.start >= final!.words![i - 1]!.end - 0.011, 'words follow each other');
    }
    assert.equal(final!.start, final!.words![0]!.start);
    assert.equal(final!.end, final!.words!.at(-1)!.end);
    for (const text of t.finals.flatMap((f) => [f.text, ...(f.words ?? []).map((w) => w.word)])) assert.doesNotMatch(text, FILLER);
  });

  it('converts audio sox reads (44.1 kHz stereo FLAC) and transcribes it', async () => {
    const flac = path.join(server.fileRoot, 'goforward.flac');
    execFileSync('sox', [goforward, '-r', '44100', '-c', '2', flac]);
    const t = await transcribe(server, flac, { chunkMs: 500 });
    assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
  });

  it('paces chunks at the audio\'s own rate with pace "realtime"', async () => {
    const t = await transcribe(server, goforward, { pace: 'realtime', chunkMs: 500 });
    assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
    const produced = t.transcripts.map((m) => m.producedAt! - t.sentAt);
    // Chunk n (of 500 ms) is written no sooner than n × 500 ms after the producer began, which
    // was after START was sent. (The last two are the short last chunk and the end-of-audio marker.)
    for (let n = 1; n <= produced.length - 2; n++) {
      assert.ok(produced[n - 1]! >= n * 500 - 2, `chunk ${n} written ${produced[n - 1]!.toFixed(0)} ms after START`);
    }
  });

  it('runs another engine behind the Recognizer interface in a pipeline of its own (README recipe)', async () => {
    const t = await transcribe(server, goforward, { chunkMs: 200 }, 'own-engine');
    assert.equal(t.finals.length, 1, JSON.stringify(t.finals));
    const [loud] = t.finals;
    assert.equal(loud!.text, 'loud');
    assert.ok(loud!.start > 0.2 && loud!.start < 0.6 && loud!.end > 1.8 && loud!.end < 2.75, `${loud!.start}–${loud!.end} s`);
  });

  it('refuses files it cannot use with BAD_URL naming the defect, before anything starts', async () => {
    const root = server.fileRoot;
    const pcm = fs.readFileSync(goforward);
    const noData = Buffer.from(pcm.subarray(0, 36));
    noData.writeUInt32LE(28, 4);
    fs.writeFileSync(path.join(root, 'no-data.wav'), noData);
    const badFmt = Buffer.from(pcm);
    badFmt.writeUInt16LE(0, 22); // 0 channels
    fs.writeFileSync(path.join(root, 'zero-channels.wav'), badFmt);
    fs.writeFileSync(path.join(root, 'notes.txt'), 'this is not audio at all\n');
    fs.mkdirSync(path.join(root, 'folder.wav'));
    const cases: Array<[string, string, RegExp]> = [
      ['no-data.wav', 'BAD_URL', /not a usable WAV file: it has no data chunk/],
      ['zero-channels.wav', 'BAD_URL', /not a usable WAV file: its fmt chunk says 0 channels/],
      ['notes.txt', 'BAD_URL', /not a 16 kHz mono 16-bit WAV and sox cannot read it/],
      ['missing.wav', 'BAD_URL', /no such file/],
      ['folder.wav', 'BAD_URL', /not a regular file/],
    ];
    const client = await TestClient.open(server.wsUrl());
    for (const [file, code, message] of cases) {
      const from = client.messages.length;
      client.send({ command: 'START', pipeline: 'transcribe', url: pathToFileURL(path.join(root, file)).href });
      const err = await client.waitFor((m) => m.type === 'error', `error for ${file}`, from);
      assert.equal(err.code, code, file);
      assert.match(err.message!, message, file);
    }
    for (const [options, message] of [
      [{ chunkMs: 50 }, /options\.chunkMs must be >= 100/],
      [{ pace: 'slow' }, /options\.pace must be equal to one of the allowed values/],
    ] as const) {
      const from = client.messages.length;
      client.send({ command: 'START', pipeline: 'transcribe', url: pathToFileURL(goforward).href, options });
      const err = await client.waitFor((m) => m.type === 'error', 'BAD_OPTIONS', from);
      assert.equal(err.code, 'BAD_OPTIONS');
      assert.match(err.message!, message);
    }
    const from = client.messages.length;
    client.send({ command: 'START', pipeline: 'transcribe', url: 'demo://x' });
    const err = await client.waitFor((m) => m.type === 'error', 'BAD_URL', from);
    assert.match(err.message!, /pipeline "transcribe" takes urls starting with "file:\/\/"/);
    assert.equal(server.app.sessions.size, 0);
    assert.deepEqual(client.invalid, []);
    client.close();
  });
});
