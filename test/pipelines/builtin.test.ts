import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

describe('built-in pipelines', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('demo writes timestamped chunks at intervalMs and returns their text', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'demo', url: 'ignored', options: { intervalMs: 50 } });
    const ts = await client.waitForTranscripts(4);
    client.send({ command: 'STOP' });
    await client.waitClose();
    assertInOrder(client.transcripts());
    for (const t of ts) {
      const m = /^Data from producer #(\d+) at (\d+\.\d+)$/.exec(String(t.data));
      assert.ok(m, `demo text: ${String(t.data)}`);
      assert.equal(Number(m[1]), t.seq);
      assert.ok(Math.abs(Number(m[2]) * 1000 - t.producedAt!) < 1000, 'text carries when the chunk was produced');
    }
  });

  it('tail follows appended lines, holds partial lines, survives truncation and rotation', async () => {
    const file = path.join(server.fileRoot, 'app.log');
    fs.writeFileSync(file, 'old line before start\n');
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'tail', url: pathToFileURL(file).href, options: { pollMs: 10 } });
    const lines = () => client.transcripts().flatMap((t) => t.data as string[]);
    const waitLines = (expected: string[]) =>
      eventually(() => JSON.stringify(lines()) === JSON.stringify(expected), `lines ${JSON.stringify(expected)}, got ${JSON.stringify(lines())}`);

    fs.appendFileSync(file, 'one\ntwo\npart');
    await waitLines(['one', 'two']);
    fs.appendFileSync(file, 'ial\n');
    await waitLines(['one', 'two', 'partial']);
    // Truncation: the file shrinks; tail starts again from its beginning.
    fs.truncateSync(file, 0);
    await new Promise((r) => setTimeout(r, 100));
    fs.appendFileSync(file, 'after truncate\n');
    await waitLines(['one', 'two', 'partial', 'after truncate']);
    // Rotation: the file is renamed away and a new one takes its name.
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, 'after rotate\n');
    await waitLines(['one', 'two', 'partial', 'after truncate', 'after rotate']);
    client.send({ command: 'STOP' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'client');
    assertInOrder(client.transcripts());
    await eventually(() => server.app.sessions.size === 0 && server.spools().length === 0, 'session and spool gone');
  });

  it('tail applies the regex filter and refuses URLs outside FILE_ROOT, symlinks included', async () => {
    const file = path.join(server.fileRoot, 'filtered.log');
    fs.writeFileSync(file, '');
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'tail', url: pathToFileURL(file).href, options: { filter: 'ERROR', pollMs: 10 } });
    fs.appendFileSync(file, 'INFO fine\nERROR disk full\nDEBUG x\nERROR again\n');
    await eventually(
      () => client.transcripts().flatMap((t) => t.data as string[]).length === 2,
      'two filtered lines',
    );
    assert.deepEqual(client.transcripts().flatMap((t) => t.data as string[]), ['ERROR disk full', 'ERROR again']);
    client.send({ command: 'STOP' });
    await client.waitClose();

    const link = path.join(server.fileRoot, 'escape.log');
    fs.symlinkSync('/etc/hostname', link);
    const probe = await TestClient.open(server.wsUrl());
    for (const [url, code] of [
      [pathToFileURL(link).href, 'BAD_URL'],
      [pathToFileURL(path.join(server.fileRoot, '..', 'data', 'x')).href, 'BAD_URL'],
      ['', 'BAD_URL'],
    ] as const) {
      const from = probe.messages.length;
      probe.send({ command: 'START', pipeline: 'tail', url });
      const err = await probe.waitFor((m) => m.type === 'error', `error for ${url}`, from);
      assert.equal(err.code, code, url);
    }
    const from = probe.messages.length;
    probe.send({ command: 'START', pipeline: 'tail', url: pathToFileURL(file).href, options: { filter: '(' } });
    const bad = await probe.waitFor((m) => m.type === 'error', 'bad regex', from);
    assert.match(bad.message!, /filter is not a valid regular expression/);
    probe.close();
  });
});
