/**
 * An utterance's final pass (pocketsphinx's ps_end_utt, ~0.1–0.25 s of CPU) runs on a native
 * thread of its own while the session takes in the next chunks (SPEECH_FINAL_PASS_HOLD_MS).
 * The real recognizer on real speech, in-process, then through a real server.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config.js';
import { PocketsphinxRecognizer } from '../../../src/pipelines/speech/pocketsphinx.js';
import type { Utterance } from '../../../src/pipelines/speech/recognizer.js';
import { TestClient } from '../../helpers/client.js';
import { startServer, type TestServer } from '../../helpers/server.js';
import { GOFORWARD_RAW, heard, joinWithPauses, sendFrames, synthesize } from '../../helpers/speech.js';

/** Bytes of 100 ms of s16le 16 kHz mono. */
const PIECE_BYTES = 3200;

function samples(buf: Buffer): Int16Array {
  const copy = Buffer.from(buf);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.length / 2);
}

interface Run {
  finals: Utterance[];
  /** For each final, the index of the 100 ms piece whose accept() returned it. */
  at: number[];
  /** accept() calls after which an utterance was being completed off the thread. */
  completingSeen: number;
}

/** Feeds `pcm` in 100 ms pieces, as fast as accept() takes them, then finish(). */
function decode(pcm: Buffer, finalPassHoldMs: number, settings = loadConfig({}).speech): Run {
  const recognizer = new PocketsphinxRecognizer({ ...settings, idleDecodersPerThread: 1, decoderIdleMs: 60_000, finalPassHoldMs }, { silenceMs: 500, words: true });
  const run: Run = { finals: [], at: [], completingSeen: 0 };
  try {
    let piece = 0;
    for (let i = 0; i < pcm.length; i += PIECE_BYTES, piece++) {
      const finals = recognizer.accept(samples(pcm.subarray(i, i + PIECE_BYTES)));
      if (recognizer.completing()) {
        run.completingSeen++;
        assert.equal(recognizer.partial(), null, 'no partial while the utterance before is being completed');
      }
      for (const f of finals) {
        run.finals.push(f);
        run.at.push(piece);
      }
    }
    for (const f of recognizer.finish()) {
      run.finals.push(f);
      run.at.push(piece);
    }
  } finally {
    recognizer.close();
  }
  return run;
}

describe('final passes on a thread of their own', () => {
  let dir: string;
  let talk: Buffer;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-final-pass-'));
    const sentences = ['the quick brown fox jumps over the lazy dog', 'please call stella and ask her to bring these things', 'we also need a small plastic snake'];
    const parts = await Promise.all(sentences.map((s, i) => synthesize(s, dir, `s${i}`)));
    const wav = await joinWithPauses(parts, 1, path.join(dir, 'talk.wav'));
    // A second of silence after the last sentence: each of the three ends at a pause.
    talk = execFileSync('sox', [wav, '-t', 'raw', '-r', '16000', '-e', 'signed', '-b', '16', '-c', '1', '-', 'pad', '0', '1']);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('give exactly the transcript, times and confidences the consumer thread gives, each final some pieces later', () => {
    const own = decode(talk, 0);
    const off = decode(talk, 1000);
    assert.equal(own.finals.length, 3, JSON.stringify(own.finals.map((f) => f.text)));
    assert.equal(own.completingSeen, 0, 'with SPEECH_FINAL_PASS_HOLD_MS=0 every pass runs inside accept()');
    assert.deepEqual(off.finals, own.finals, 'the audio held during a pass is fed in the same blocks and order');
    assert.ok(off.completingSeen >= 3, `a pass was seen running after each utterance (${off.completingSeen} pieces)`);
    // Fed as fast as accept() takes them, the next pieces come while the pass runs: they are held
    // (up to 1000 ms of audio, then accept() waits), so each final comes with a later piece.
    for (const [i, piece] of off.at.entries()) {
      assert.ok(piece > own.at[i]! && piece <= own.at[i]! + 11, `final ${i}: piece ${piece}, on the consumer's thread ${own.at[i]}`);
    }
  });

  it('is waited for when a STOP closes the stream under it: the decoder lent next gives a clean transcript', () => {
    const settings = { ...loadConfig({}).speech, idleDecodersPerThread: 1, decoderIdleMs: 60_000, finalPassHoldMs: 1000 };
    const stopped = new PocketsphinxRecognizer(settings, { silenceMs: 500, words: false });
    let started = false;
    for (let i = 0; i < talk.length && !started; i += PIECE_BYTES) {
      stopped.accept(samples(talk.subarray(i, i + PIECE_BYTES)));
      started = stopped.completing();
    }
    assert.ok(started, 'the first utterance ended and its pass is running');
    stopped.close();
    assert.equal(stopped.completing(), false);
    const goforward = decode(fs.readFileSync(GOFORWARD_RAW), 1000, settings);
    assert.deepEqual(goforward.finals.map((f) => f.text), ['go forward ten meters']);
  });
});

describe('a client whose audio stops after an utterance', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_MESSAGES_PER_SECOND: '1000' });
  });
  after(() => server.close());

  it('gets the final once its pass is over, without sending more audio or END', async () => {
    // goforward.raw ends 0.8 s after its last word: the pause ends the utterance inside it.
    const pcm = fs.readFileSync(GOFORWARD_RAW);
    const client = await TestClient.open(server.wsUrl('/live-transcription'));
    try {
      await client.start({ pipeline: 'transcribe', url: 'client:' });
      sendFrames(client, pcm, PIECE_BYTES);
      const frames = Math.ceil(pcm.length / PIECE_BYTES);
      await client.waitFor((m) => m.type === 'transcript' && (m.data as { final: unknown[] }).final.length > 0, 'a final', 0, 60_000);
      assert.deepEqual(heard(client).finals.map((f) => f.text), ['go forward ten meters']);
      assert.ok(client.transcripts().length <= frames, 'it came with a result of the audio sent, not one for more');
      assert.equal(client.messages.some((m) => m.type === 'stopped'), false, 'the session is still running');
    } finally {
      client.terminate();
    }
  });
});
