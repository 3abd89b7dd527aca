import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { TestClient } from '../../helpers/client.js';
import { eventually, startServer, threadCount } from '../../helpers/server.js';
import { GOFORWARD_RAW, wavFromRaw } from '../../helpers/speech.js';

const SOX_HOLDER = fileURLToPath(new URL('../../fixtures/speech/sox-holder.js', import.meta.url));

/** Pids of `sox` processes whose parent is this process. */
function soxChildren(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && m[1] === 'sox' && Number(m[2]) === process.pid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    const state = /^\d+ \(.*\) (\S)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))![1];
    return state !== 'Z';
  } catch {
    return false;
  }
}

describe('transcribe sessions leave nothing behind', () => {
  it('20 STARTs and STOPs in the middle of utterances leave no session, thread or sox process', async () => {
    // A generous grace: on a busy machine a stop must still find both loops returning by
    // themselves (that is what `forced: false` below proves), never cut off by the timer.
    const server = await startServer({ POOL_IDLE_TIMEOUT_MS: '200', STOP_GRACE_MS: '5000' });
    try {
      // Ten goforwards in a row, as a WAV read directly and as FLAC converted by sox.
      const raw = path.join(server.fileRoot, 'long.raw');
      fs.writeFileSync(raw, Buffer.concat(Array.from({ length: 10 }, () => fs.readFileSync(GOFORWARD_RAW))));
      const wav = wavFromRaw(raw, path.join(server.fileRoot, 'long.wav'));
      wavFromRaw(GOFORWARD_RAW, path.join(server.fileRoot, 'one.wav'));
      const flac = path.join(server.fileRoot, 'long.flac');
      execFileSync('sox', [path.join(server.fileRoot, 'one.wav'), flac, 'repeat', '9']);
      const urls = [pathToFileURL(wav).href, pathToFileURL(flac).href];

      const round = async (i: number) => {
        const client = await TestClient.open(server.wsUrl());
        // The FLAC at the audio's pace, so sox is still converting at the STOP; the WAV as fast as it goes.
        const pace = i % 2 === 1 ? 'realtime' : 'fast';
        const id = await client.start({ pipeline: 'transcribe', url: urls[i % 2], options: { pace, chunkMs: 100 } });
        // Mid-utterance: a partial hypothesis is out, no final yet.
        await client.waitFor((m) => m.type === 'transcript' && (m.data as { partial: string | null }).partial !== null, 'a partial', 0, 30_000);
        if (i % 2 === 1) assert.ok(soxChildren().length > 0, 'sox converts the FLAC while the session runs');
        client.send({ command: 'STOP' });
        const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 30_000);
        assert.equal(stopped.reason, 'client');
        await eventually(() => server.app.sessions.get(id) === undefined, 'session ended');
        // Both loops returned by themselves (nothing forced): the decoder was freed in `finally`.
        assert.equal(server.app.sessions.find(id)?.summary?.forced, false);
      };
      await round(1);
      await eventually(() => soxChildren().length === 0, 'no sox left after the warm-up');
      const baseline = threadCount();
      for (let i = 0; i < 20; i += 4) await Promise.all([i, i + 1, i + 2, i + 3].map(round));
      assert.equal(server.app.sessions.size, 0);
      await eventually(() => soxChildren().length === 0, `no sox child left (now ${soxChildren().join(', ')})`);
      await eventually(() => threadCount() <= baseline, `threads back to ${baseline} (now ${threadCount()})`, 20_000);
      await eventually(() => server.spools().length === 0, 'spools removed');
    } finally {
      await server.close();
    }
  });

  it('kills the sox child when the thread that started it is terminated', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-sox-'));
    try {
      // 30 s of audio: sox blocks on its full pipe, so only a signal ends it.
      const flac = path.join(dir, 'long.flac');
      execFileSync('sox', [wavFromRaw(GOFORWARD_RAW, path.join(dir, 'one.wav')), flac, 'repeat', '10']);
      const worker = new Worker(SOX_HOLDER, { workerData: { file: flac } });
      const pid = await new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.ok(alive(pid), 'sox runs while its thread lives');
      await worker.terminate();
      await eventually(() => !alive(pid), `sox ${pid} killed with its thread`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Operators get the full path in /api/pipelines; a client only its last part.
  for (const [variable, value, reason, told] of [
    ['POCKETSPHINX_LIBRARY', '/nonexistent/libpocketsphinx.so.3', /library '\/nonexistent\/libpocketsphinx\.so\.3' cannot be loaded/, /library '…\/libpocketsphinx\.so\.3' cannot be loaded/],
    ['POCKETSPHINX_MODEL_DIR', '/nonexistent/en-us', /acoustic model '\/nonexistent\/en-us\/en-us\/mdef' is missing/, /acoustic model '…\/mdef' is missing/],
  ] as const) {
    it(`lists transcribe as unavailable and refuses it with PIPELINE_UNAVAILABLE when ${variable} points nowhere; the rest runs`, async () => {
      const server = await startServer({ [variable]: value });
      try {
        const list = (await (await fetch(server.httpUrl('/api/pipelines'))).json()) as {
          items: { name: string; available: boolean; unavailableReason?: string }[];
        };
        const transcribe = list.items.find((p) => p.name === 'transcribe')!;
        assert.equal(transcribe.available, false);
        assert.match(transcribe.unavailableReason!, reason);
        assert.ok(list.items.filter((p) => p.name !== 'transcribe').every((p) => p.available));
        assert.equal((await fetch(server.httpUrl('/readyz'))).status, 200, 'an unavailable built-in does not make the service unready');
        fs.writeFileSync(path.join(server.fileRoot, 'a.wav'), Buffer.alloc(0));
        const client = await TestClient.open(server.wsUrl());
        client.send({ command: 'START', pipeline: 'transcribe', url: pathToFileURL(path.join(server.fileRoot, 'a.wav')).href });
        const err = await client.waitFor((m) => m.type === 'error', 'PIPELINE_UNAVAILABLE');
        assert.equal(err.code, 'PIPELINE_UNAVAILABLE');
        assert.match(err.message!, told);
        assert.doesNotMatch(err.message!, /nonexistent/);
        await client.start({ options: { intervalMs: 10 } });
        await client.waitForTranscripts(2);
        client.send({ command: 'STOP' });
        await client.waitClose();
      } finally {
        await server.close();
      }
    });
  }
});
