import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { streamAudio } from '../../src/cli/audio-stream.js';
import { CLI, collect, type Run } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { GOFORWARD_RAW, wavFromRaw } from '../helpers/speech.js';

describe('tandem stream --file (the client as the producer)', () => {
  let server: TestServer;
  let wav: string;
  before(async () => {
    server = await startServer();
    // The CLI's own file: outside FILE_ROOT on purpose, the server never reads it.
    wav = wavFromRaw(GOFORWARD_RAW, path.join(path.dirname(server.fileRoot), 'talk.wav'));
  });
  after(() => server.close());

  function tandem(args: string[], stdin?: Buffer): Promise<Run> {
    const child = spawn(process.execPath, [CLI, 'stream', ...args], {
      env: { ...process.env, TANDEM_URL: server.httpUrl('') },
      stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const run = collect(child);
    if (stdin) child.stdin!.end(stdin);
    return run;
  }

  it('pushes a WAV file as frames, sends END, and prints the final transcript as a line', async () => {
    const run = await tandem(['--pipeline', 'transcribe', '--file', wav, '--fast']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'go forward ten meters\n', 'finals only when stdout is not a terminal');
    assert.match(run.stderr, /stopped \(reason completed, \d+ results\)/);
  });

  it('reads raw s16le 16 kHz mono PCM from stdin with --file - (as arecord gives it)', async () => {
    const run = await tandem(['--file', '-', '--fast'], fs.readFileSync(GOFORWARD_RAW));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'go forward ten meters\n');
  });

  it('converts any file sox reads (44.1 kHz stereo FLAC) and sends it at the audio\'s own pace', async () => {
    const flac = path.join(path.dirname(server.fileRoot), 'talk.flac');
    execFileSync('sox', [wav, '-r', '44100', '-c', '2', flac]);
    const run = await tandem(['--pipeline', 'transcribe', '--file', flac]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'go forward ten meters\n');
  });

  it('shows the partial hypothesis in place on a terminal, and replaces it by the final line', async () => {
    // A terminal as streamAudio sees one: a writable stream that says isTTY.
    const out = Object.assign(new PassThrough(), { isTTY: true });
    const err = new PassThrough();
    let printed = '';
    out.setEncoding('utf8').on('data', (s: string) => (printed += s));
    err.resume();
    const code = await streamAudio({ server: server.httpUrl(''), pipeline: 'transcribe', file: wav, fast: true, options: undefined, stdin: new PassThrough(), out, err });
    assert.equal(code, 0);
    const CLEAR = '\r\x1b[K';
    const partials = printed.split(CLEAR).filter((p) => p !== '' && !p.includes('\n'));
    assert.ok(partials.length > 0, `a partial was drawn in place: ${JSON.stringify(printed)}`);
    assert.ok(partials.every((p) => 'go forward ten meters'.startsWith(p.split(' ')[0]!)), `partials are the words heard so far: ${JSON.stringify(partials)}`);
    // Each partial is erased before the final line, and nothing is drawn after it.
    assert.ok(printed.endsWith(`${CLEAR}go forward ten meters\n`), JSON.stringify(printed));
  });

  it('says what is wrong with a file it cannot read', async () => {
    const run = await tandem(['--file', path.join(server.fileRoot, 'missing.wav')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot read .*missing\.wav/);
  });
});
