import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const CLI = fileURLToPath(new URL('../../src/cli/tandem.js', import.meta.url));
/** 17 ids over 16 possible first hex digits: at least two share one (pigeonhole), whatever the random ids. */
const SESSIONS = 17;

function tandem(server: TestServer, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, TANDEM_URL: server.httpUrl('') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('tandem inspect and stop take an id prefix, as docker does', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  let ids: string[] = [];
  before(async () => {
    server = await startServer();
    for (let i = 0; i < SESSIONS; i++) clients.push(await TestClient.open(server.wsUrl()));
    await Promise.all(clients.map((c) => c.start({ options: { intervalMs: 60_000 } })));
    const list = await api(server.httpUrl(''), 'GET', '/api/sessions?limit=200');
    ids = list.body.items.map((s: { id: string }) => s.id);
    assert.equal(ids.length, SESSIONS);
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  /** The shortest start of `id` that no other session's id shares. */
  const uniquePrefix = (id: string) => {
    for (let n = 1; n <= id.length; n++) {
      const p = id.slice(0, n);
      if (ids.filter((x) => x.startsWith(p)).length === 1) return p;
    }
    return id;
  };

  it('inspects the one session an unambiguous prefix names', async () => {
    const id = ids[0]!;
    const prefix = uniquePrefix(id);
    assert.ok(prefix.length < id.length);
    const run = await tandem(server, ['inspect', prefix.toUpperCase()]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^id\\s+${id}$`, 'm'));
  });

  it('refuses an ambiguous prefix, listing the sessions it matches', async () => {
    const first = [...new Set(ids.map((x) => x[0]!))].find((c) => ids.filter((x) => x.startsWith(c)).length >= 2)!;
    const matching = ids.filter((x) => x.startsWith(first));
    const run = await tandem(server, ['inspect', first]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`"${first}" is ambiguous: ${matching.length} sessions start with it`));
    for (const id of matching) assert.ok(run.stderr.includes(id), `${id} is listed in: ${run.stderr}`);
  });

  it('says so when no session starts with the prefix, and refuses what cannot start an id', async () => {
    // One character short of a full id, differing from every id in its last character.
    const base = ids[0]!.slice(0, 34);
    const absent = base + [...'0123456789abcdef'].find((c) => !ids.some((x) => x.startsWith(base + c)))!;
    const none = await tandem(server, ['inspect', absent]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no session id starts with/);
    const bad = await tandem(server, ['inspect', 'zz/../x']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /neither a session id nor the start of one/);
  });

  it('stops a session named by its prefix; its client gets stopped with reason admin', async () => {
    const client = clients[clients.length - 1]!;
    const started = client.messages.find((m) => m.type === 'started')!;
    const id = started.session as string;
    const run = await tandem(server, ['stop', uniquePrefix(id)]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`session ${id} ended: reason admin`));
    const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'admin');
  });
});
