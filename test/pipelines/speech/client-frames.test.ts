import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../../helpers/client.js';
import { api } from '../../helpers/openapi.js';
import { eventually, startServer, type TestServer } from '../../helpers/server.js';
import { GOFORWARD_RAW, heard, sendFrames, transcribeFrames } from '../../helpers/speech.js';

/** Bytes of 1 ms of s16le 16 kHz mono. */
const BYTES_PER_MS = 32;

describe('transcribe on audio the client sends (url "client:")', () => {
  let server: TestServer;
  let pcm: Buffer;
  before(async () => {
    server = await startServer({ MAX_MESSAGES_PER_SECOND: '1000' });
    pcm = fs.readFileSync(GOFORWARD_RAW);
  });
  after(() => server.close());

  for (const frameMs of [100, 1000]) {
    it(`hears exactly "go forward ten meters" in goforward.raw sent as frames of ${frameMs} ms, then END completes it`, async () => {
      const t = await transcribeFrames(server, pcm, frameMs * BYTES_PER_MS);
      assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
      assert.equal(t.stopped.reason, 'completed');
      assert.equal(t.closeCode, 1000);
      const transcripts = t.client.transcripts();
      assert.equal(transcripts.length, Math.ceil(pcm.length / (frameMs * BYTES_PER_MS)) + 1, 'one result per frame and one for END');
      const messages = t.client.messages;
      assert.ok(messages.indexOf(transcripts.at(-1)!) < messages.indexOf(t.stopped), 'the last result comes before stopped');
      assert.ok(t.finals[0]!.end < 2.8, 'times lie within the audio');
    });
  }

  it('hears the same words in f32le at 48 kHz (resampled to 16 kHz), in 16 KiB frames', async () => {
    const f32 = path.join(server.fileRoot, 'goforward-48k.f32');
    execFileSync('sox', ['-t', 'raw', '-r', '16000', '-e', 'signed', '-b', '16', '-c', '1', GOFORWARD_RAW, '-t', 'raw', '-r', '48000', '-e', 'floating-point', '-b', '32', '-c', '1', f32]);
    const audio = fs.readFileSync(f32);
    const t = await transcribeFrames(server, audio, 16 * 1024, { sampleRate: 48000, encoding: 'f32le' });
    assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
    assert.equal(t.stopped.reason, 'completed');
  });

  it('refuses an f32le frame that is not a whole number of 4-byte samples', async () => {
    const client = await TestClient.open(server.wsUrl());
    try {
      await client.start({ pipeline: 'transcribe', url: 'client:', options: { encoding: 'f32le' } });
      client.ws.send(Buffer.alloc(4098));
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'BAD_MESSAGE');
      assert.match(err.message!, /4098 bytes is not a whole number of samples of 4 bytes/);
    } finally {
      client.terminate();
    }
  });

  it('resumes after a dropped connection: resumed.audio is the last chunk held, the client resends the rest, END gives the final', async () => {
    const frameBytes = 200 * BYTES_PER_MS;
    const client = await TestClient.open(server.wsUrl('/live-transcription'));
    const id = await client.start({ pipeline: 'transcribe', url: 'client:' });
    const secret = client.messages.find((m) => m.type === 'started')!.resume!;
    // Half the audio, then the connection vanishes without a close frame.
    const sentFrames = 7;
    sendFrames(client, pcm.subarray(0, sentFrames * frameBytes), frameBytes);
    await client.waitForTranscripts(3, 30_000);
    client.terminate();
    await eventually(async () => (await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`)).body.attached === false, 'the server saw the drop');

    const again = await TestClient.open(server.wsUrl('/live-transcription'));
    try {
      const received = client.transcripts().length;
      again.send({ command: 'RESUME', session: id, resume: secret, after: received });
      const resumed = await again.waitFor((m) => m.type === 'resumed' || m.type === 'error', 'resumed');
      assert.equal(resumed.type, 'resumed', JSON.stringify(resumed));
      const held = resumed.audio!;
      assert.ok(held >= 1 && held <= sentFrames, `audio ${held} of ${sentFrames} frames sent`);
      sendFrames(again, pcm, frameBytes, held * frameBytes);
      again.send({ command: 'END' });
      const stopped = await again.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
      assert.equal(stopped.reason, 'completed');
      assert.equal(await again.waitClose(), 1000);
      const seqs = [...client.transcripts().slice(0, received), ...again.transcripts()].map((t) => t.seq);
      assert.deepEqual(seqs, Array.from({ length: Math.ceil(pcm.length / frameBytes) + 1 }, (_, i) => i + 1), 'every chunk once, in order');
      // The replay starts after what the first connection got, so together they hold every result once.
      const finals = [...heard(client).finals, ...heard(again).finals];
      assert.deepEqual(finals.map((f) => f.text).join(' '), 'go forward ten meters');
      assert.deepEqual(again.invalid, []);
    } finally {
      again.terminate();
    }
  });
});
