import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const once = { headers: { connection: 'close' } };

describe('a PIPELINES_DIR that holds more than pipelines', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-pipelines-'));
    // A helper module, a pipeline that imports it, TypeScript its author forgot to compile, notes.
    fs.writeFileSync(path.join(dir, 'util.mjs'), 'export const shout = (s) => s.toUpperCase();\n');
    fs.writeFileSync(
      path.join(dir, 'shouter.mjs'),
      `import { shout } from './util.mjs';
export default {
  name: 'shouter',
  producer: { shape: 'step', step(ctx) { ctx.write('hi'); return { done: true }; } },
  consumer: { shape: 'step', step(ctx, chunk) { return shout(chunk.text()); } },
};
`,
    );
    fs.writeFileSync(
      path.join(dir, 'silent.mjs'),
      `export default {
  name: 'silent',
  producer: { shape: 'step', step(ctx) { ctx.write('x'); return { done: true }; } },
  consumer: { shape: 'step', step() {} },
};
`,
    );
    fs.writeFileSync(path.join(dir, 'draft.ts'), 'export default {};\n');
    fs.writeFileSync(path.join(dir, 'README.md'), '# my pipelines\n');
    server = await startServer({ PIPELINES_DIR: dir });
  });
  after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the pipelines, lists helpers and TypeScript as ignored with the reason, and stays ready', async () => {
    const list = (await api(server.httpUrl(''), 'GET', '/api/pipelines', once)).body;
    assert.deepEqual(list.loadErrors, []);
    assert.ok(list.items.some((p: { name: string }) => p.name === 'shouter'));
    const ignored = list.ignored.map((f: { file: string; reason: string }) => [path.basename(f.file), f.reason]);
    assert.deepEqual(ignored, [
      ['draft.ts', 'TypeScript is not run; compile it to .js or .mjs in this folder'],
      ['util.mjs', 'no default export: taken as a helper module, not a pipeline'],
    ]);
    assert.equal((await api(server.httpUrl(''), 'GET', '/readyz', once)).status, 200);
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'shouter' });
    await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.deepEqual(client.transcripts().map((t) => t.data), ['HI']);
  });

  it('sends "data": null for a chunk whose consumer returns nothing', async () => {
    const client = await TestClient.open(server.wsUrl());
    await client.start({ pipeline: 'silent' });
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'completed');
    assert.deepEqual(client.transcripts().map((t) => t.data), [null]);
    assert.deepEqual(client.invalid, []);
  });

  it('lists for every pipeline the urls it takes', async () => {
    const list = (await api(server.httpUrl(''), 'GET', '/api/pipelines', once)).body;
    const urls = Object.fromEntries(list.items.map((p: { name: string; urls: string[] }) => [p.name, p.urls]));
    assert.deepEqual(urls.demo, ['*']);
    assert.deepEqual(urls.tail, ['file://']);
    assert.deepEqual(urls.transcribe, ['file://', 'client:']);
    assert.deepEqual(urls.shouter, ['*'], 'a pipeline that declares none takes any url');
  });
});
