import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, threadCount, type TestServer } from '../../helpers/server.js';
import { GOFORWARD_RAW, librivoxClips, sendFrames, transcribe, transcribeFrames, wavFromRaw, type Utterance } from '../../helpers/speech.js';

/** Bytes of 200 ms of s16le 16 kHz mono. */
const FRAME_BYTES = 200 * 32;

/** `tandem_speech_decoders`, `…_decoder_loads_total` and `…_decoders_lost_total` as the service reports them now. */
async function decoders(server: TestServer): Promise<{ idle: number; busy: number; loads: number; lost: number }> {
  const text = await (await fetch(server.httpUrl('/metrics'))).text();
  const read = (series: string) => {
    const m = new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `${series} is scraped`);
    return Number(m[1]);
  };
  return {
    idle: read('tandem_speech_decoders{state="idle"}'),
    busy: read('tandem_speech_decoders{state="busy"}'),
    loads: read('tandem_speech_decoder_loads_total'),
    lost: read('tandem_speech_decoders_lost_total'),
  };
}

/**
 * Waits until the counts are `expected`. A session's `stopped` can reach the client before its
 * thread's report that the decoder was given back (they travel on different channels).
 */
async function settled(server: TestServer, expected: { idle: number; busy: number; loads: number }, what: string): Promise<void> {
  let last: Awaited<ReturnType<typeof decoders>> | undefined;
  await eventually(async () => {
    last = await decoders(server);
    return last.idle === expected.idle && last.busy === expected.busy && last.loads === expected.loads;
  }, `${what}: ${JSON.stringify(expected)}`).catch((err: Error) => {
    throw new Error(`${err.message}; now ${JSON.stringify(last)}`);
  });
}

/** Raw s16le 16 kHz mono of a LibriVox clip, converted now by sox. */
function librivoxPcm(dir: string): Buffer {
  const clip = librivoxClips()[0]!;
  const raw = path.join(dir, 'librivox.raw');
  execFileSync('sox', [clip.file, '-t', 'raw', '-r', '16000', '-e', 'signed', '-b', '16', '-c', '1', raw]);
  return fs.readFileSync(raw);
}

describe('transcribe sessions share decoders', () => {
  // One loop thread: every client-fed session (its consumer is its only loop) runs on it, in turn.
  let server: TestServer;
  let goforward: Buffer;
  let librivox: Buffer;
  before(async () => {
    server = await startServer({ LOOP_MAX_THREADS: '1', SPEECH_IDLE_DECODERS_PER_THREAD: '1', SPEECH_DECODER_IDLE_SECONDS: '600' });
    goforward = fs.readFileSync(GOFORWARD_RAW);
    librivox = librivoxPcm(server.fileRoot);
  });
  after(() => server.close());

  const hear = async (audio: Buffer): Promise<Utterance[]> => {
    const t = await transcribeFrames(server, audio, FRAME_BYTES, { words: true });
    assert.equal(t.stopped.reason, 'completed');
    return t.finals;
  };

  it('gives sessions in a row on one thread the transcripts, times and confidences a new decoder would, from one decoder lent in turn', async () => {
    const first = await hear(librivox);
    assert.ok(first.length > 0);
    await settled(server, { idle: 1, busy: 0, loads: 1 }, 'the session gave its decoder back');

    // goforward after LibriVox: its times start at 0, not where LibriVox ended.
    const gf = await hear(goforward);
    assert.deepEqual(gf.map((u) => u.text), ['go forward ten meters']);
    assert.ok(gf[0]!.start < 1 && gf[0]!.end < 2.8, `times from the start of this session's audio: ${JSON.stringify(gf[0])}`);
    await settled(server, { idle: 1, busy: 0, loads: 1 }, 'the same decoder again, none loaded');

    // The LibriVox clip once more, on a decoder that heard two sessions: what the first session
    // heard on a new one, to the word, time and confidence. (Left as the last session moved it,
    // the cepstral-mean estimate changes what is heard in this clip.)
    assert.deepEqual(await hear(librivox), first);
    await settled(server, { idle: 1, busy: 0, loads: 1 }, 'still the one decoder');
  });

  it('gives a clean transcript to the session after one stopped in mid-utterance', async () => {
    const reference = await hear(goforward);
    const { loads } = await decoders(server);
    const client = await TestClient.open(server.wsUrl('/live-transcription'));
    try {
      await client.start({ pipeline: 'transcribe', url: 'client:', options: { words: true } });
      // Two thirds of "go forward ten meters": words are being heard, the utterance is open.
      sendFrames(client, goforward.subarray(0, Math.floor(goforward.length / 3) * 2), FRAME_BYTES);
      await client.waitFor((m) => m.type === 'transcript' && (m.data as { partial: string | null }).partial !== null, 'a partial', 0, 30_000);
      // The thread's report of the loan went out before any result, on the same channel.
      assert.deepEqual(await decoders(server), { idle: 0, busy: 1, loads, lost: 0 }, 'the session holds the decoder');
      client.send({ command: 'STOP' });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
      assert.equal(stopped.reason, 'client');
    } finally {
      client.terminate();
    }
    await settled(server, { idle: 1, busy: 0, loads }, 'the stopped session gave its decoder back');
    // Nothing of the cut utterance: no "go forward" left over, no shifted times.
    assert.deepEqual(await hear(goforward), reference);
    await settled(server, { idle: 1, busy: 0, loads }, 'and it was lent again');
  });
});

describe('transcribe sessions on files and client audio', () => {
  it('find the decoder the session before left, wherever its loop threads are', async () => {
    // Two loop threads: a file session holds both (producer, consumer), a client-fed one only a
    // consumer's. Piscina would give the client-fed consumer the first idle thread, the one the
    // file session's producer had; it goes to the thread holding the decoder instead.
    const server = await startServer({ LOOP_MAX_THREADS: '2', SPEECH_DECODER_IDLE_SECONDS: '600' });
    try {
      const wav = wavFromRaw(GOFORWARD_RAW, path.join(server.fileRoot, 'goforward.wav'));
      const pcm = fs.readFileSync(GOFORWARD_RAW);
      for (const source of ['file', 'client', 'file', 'client']) {
        const t = source === 'file' ? await transcribe(server, wav) : await transcribeFrames(server, pcm, FRAME_BYTES);
        assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
        await settled(server, { idle: 1, busy: 0, loads: 1 }, `the ${source} session gave back the one decoder`);
      }
    } finally {
      await server.close();
    }
  });
});

describe('idle decoders', () => {
  it('are freed after SPEECH_DECODER_IDLE_SECONDS, and their thread then leaves', async () => {
    const server = await startServer({ SPEECH_DECODER_IDLE_SECONDS: '1', POOL_IDLE_TIMEOUT_MS: '200' });
    try {
      const baseline = threadCount();
      const t = await transcribeFrames(server, fs.readFileSync(GOFORWARD_RAW), FRAME_BYTES);
      assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
      // Kept when the session returned it, then freed by its thread's own timer, before the
      // thread leaves: a thread that left holding it would have taken its memory along (lost).
      await settled(server, { idle: 0, busy: 0, loads: 1 }, 'the idle decoder freed');
      await eventually(() => threadCount() <= baseline, `threads back to ${baseline} (now ${threadCount()})`, 20_000);
      assert.equal((await decoders(server)).lost, 0, 'freed by its thread, not lost with it');
    } finally {
      await server.close();
    }
  });

  it('are not kept with SPEECH_IDLE_DECODERS_PER_THREAD=0: each session loads its own', async () => {
    const server = await startServer({ SPEECH_IDLE_DECODERS_PER_THREAD: '0', LOOP_MAX_THREADS: '1' });
    try {
      for (const loads of [1, 2]) {
        const t = await transcribeFrames(server, fs.readFileSync(GOFORWARD_RAW), FRAME_BYTES);
        assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
        await settled(server, { idle: 0, busy: 0, loads }, 'freed when the session ended');
      }
    } finally {
      await server.close();
    }
  });

  it('go with a thread terminated under its session: the count drops them, the next session loads one', async () => {
    // No grace: STOP terminates a loop that has not returned at once.
    const server = await startServer({ LOOP_MAX_THREADS: '1', STOP_GRACE_MS: '0', SPEECH_DECODER_IDLE_SECONDS: '600' });
    try {
      const goforward = fs.readFileSync(GOFORWARD_RAW);
      const client = await TestClient.open(server.wsUrl('/live-transcription'));
      try {
        await client.start({ pipeline: 'transcribe', url: 'client:' });
        sendFrames(client, goforward.subarray(0, 32_000), FRAME_BYTES);
        await client.waitForTranscripts(1, 30_000);
        client.send({ command: 'STOP' });
        await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
      } finally {
        client.terminate();
      }
      // The loop returned (its decoder kept) or its thread was terminated (the decoder gone with
      // it): either way nothing stays lent.
      let d = await decoders(server);
      await eventually(async () => {
        d = await decoders(server);
        // Every decoder loaded is kept or went unfreed with its thread.
        return d.busy === 0 && d.idle + d.lost === 1;
      }, 'no decoder left lent').catch((err: Error) => {
        throw new Error(`${err.message}; now ${JSON.stringify(d)}`);
      });
      // Kept (the loop returned) or lost with its thread: the next session borrows it or loads one.
      const loadsBefore = d.loads + (d.idle === 1 ? 0 : 1);
      const t = await transcribeFrames(server, goforward, FRAME_BYTES);
      assert.deepEqual(t.finals.map((f) => f.text), ['go forward ten meters']);
      // With no grace, even the completed session's thread may be terminated before its loop
      // returns the decoder (session.ts: stop('completed') forces what is still busy): not lent.
      await eventually(async () => {
        d = await decoders(server);
        return d.busy === 0 && d.idle <= 1 && d.loads === loadsBefore && d.idle + d.lost === d.loads;
      }, `nothing lent, ${loadsBefore} loaded in all`).catch((err: Error) => {
        throw new Error(`${err.message}; now ${JSON.stringify(d)}`);
      });
    } finally {
      await server.close();
    }
  });
});

describe('a loop thread that dies holding a decoder', () => {
  it('takes its decoder out of the count (lost), though Piscina no longer knows the dead thread’s id', async () => {
    const server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, SPEECH_DECODER_IDLE_SECONDS: '600' });
    const client = await TestClient.open(server.wsUrl());
    const gate = path.join(server.fileRoot, 'exit-now');
    try {
      await client.start({ pipeline: 'speech-exit', options: { gate } });
      await client.waitForTranscripts(1);
      await settled(server, { idle: 0, busy: 1, loads: 1 }, 'the consumer borrowed a decoder');
      fs.writeFileSync(gate, '');
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'PIPELINE_FAILED');
      assert.equal((await client.waitFor((m) => m.type === 'stopped', 'stopped')).reason, 'failed');
      await settled(server, { idle: 0, busy: 0, loads: 1 }, 'the dead thread’s decoder is no longer counted');
      assert.equal((await decoders(server)).lost, 1, 'and it is counted lost');
    } finally {
      client.terminate();
      await server.close();
    }
  });
});
