import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { assertServerMessage, TestClient } from '../helpers/client.js';
import { assertResponseMatchesSpec } from '../helpers/openapi.js';
import { CLI, collect, type Run } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'cli-admin-token-0123456789';
const READ = 'cli-read-token-0123456789';

/** Runs the compiled CLI as an operator would, against the test server. */
function tandem(server: TestServer, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, TANDEM_URL: server.httpUrl(''), TANDEM_TOKEN: ADMIN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

describe('tandem CLI', () => {
  let server: TestServer;
  let client: TestClient;
  let id: string;
  before(async () => {
    server = await startServer({ ADMIN_TOKEN: ADMIN, ADMIN_READ_TOKEN: READ, KEPT_SPOOLS_ALLOWED: 'true' });
    client = await TestClient.open(server.wsUrl());
    id = await client.start({ options: { intervalMs: 100 } });
    await client.waitForTranscripts(1);
  });
  after(async () => {
    client.terminate();
    await server.close();
  });

  it('lists sessions as a table, and as the API\'s JSON with --json', async () => {
    const human = await tandem(server, ['list']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^ID\s+PIPELINE\s+STATE/);
    assert.match(human.stdout, new RegExp(`${id}\\s+demo\\s+running`));
    const json = await tandem(server, ['list', '--json', '--state', 'running']);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout);
    assertResponseMatchesSpec('GET', '/api/sessions', 200, 'application/json', body);
    assert.equal(body.items[0].id, id);
  });

  it('inspects a session', async () => {
    const human = await tandem(server, ['inspect', id]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^id\\s+${id}$`, 'm'));
    assert.match(human.stdout, /^producer\s+step, /m);
    assert.match(human.stdout, /^latency\s+p50 /m);
    const json = await tandem(server, ['inspect', id, '--json']);
    assertResponseMatchesSpec('GET', `/api/sessions/${id}`, 200, 'application/json', JSON.parse(json.stdout));
  });

  it('shows the pool and the pipelines', async () => {
    const pool = await tandem(server, ['pool']);
    assert.equal(pool.code, 0, pool.stderr);
    assert.match(pool.stdout, /^threads\s+\d+ \(\d+ busy, \d+ idle, \d+ held by loops\)$/m);
    const poolJson = await tandem(server, ['pool', '--json']);
    assertResponseMatchesSpec('GET', '/api/pool', 200, 'application/json', JSON.parse(poolJson.stdout));
    const pipelines = await tandem(server, ['pipelines']);
    assert.equal(pipelines.code, 0, pipelines.stderr);
    assert.match(pipelines.stdout, /^demo \*\s+step\s+step\s+intervalMs\s+\*\s/m);
    assert.match(pipelines.stdout, /^transcribe\s+loop\s+loop\s+pace,chunkMs,partials,words,silenceMs,sampleRate,encoding\s+file:\/\/,client:\s/m);
  });

  it('lists kept spools and deletes one with the admin token only', async () => {
    const keeper = await TestClient.open(server.wsUrl());
    const kept = await keeper.start({ options: { intervalMs: 5 }, keep: true });
    await keeper.waitForTranscripts(3);
    keeper.send({ command: 'STOP' });
    await keeper.waitClose();
    const list = await tandem(server, ['spools']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+SESSION\s+SIZE\s+FILES\s+KEPT\s+AGE/);
    assert.match(list.stdout, new RegExp(`^${kept}\\s+stopped\\s+`, 'm'));
    const json = await tandem(server, ['spools', '--json']);
    assertResponseMatchesSpec('GET', '/api/spools', 200, 'application/json', JSON.parse(json.stdout));
    const readOnly = await tandem(server, ['delete-spool', kept], { TANDEM_TOKEN: READ });
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.stderr, /403 FORBIDDEN/);
    const removed = await tandem(server, ['delete-spool', kept]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`kept spool ${kept} deleted`));
    assert.doesNotMatch((await tandem(server, ['spools'])).stdout, new RegExp(kept));
    assert.equal((await tandem(server, ['delete-spool'])).code, 2);
  });

  it('reports the server\'s refusals and bad usage with exit codes 1 and 2', async () => {
    const noToken = await tandem(server, ['list'], { TANDEM_TOKEN: '' });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /401 UNAUTHORIZED/);
    const readOnly = await tandem(server, ['stop', id], { TANDEM_TOKEN: READ });
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.stderr, /403 FORBIDDEN/);
    const missing = await tandem(server, ['inspect', '0b8d5c7e-1f2a-4c3b-9d4e-5f6a7b8c9d0e']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 SESSION_NOT_FOUND/);
    const usage = await tandem(server, ['stop']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /exactly one session id/);
    const unknown = await tandem(server, ['list', '--colour']);
    assert.equal(unknown.code, 2);
    const unreachable = await tandem(server, ['pool', '--server', 'http://127.0.0.1:9']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach/);
  });

  it('stops a session with --timeout; its client gets stopped with reason admin', async () => {
    const other = await TestClient.open(server.wsUrl());
    const otherId = await other.start({ options: { intervalMs: 100 } });
    const run = await tandem(server, ['stop', otherId, '--timeout', '3']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^session ${otherId} ended: reason admin, \\d+ results delivered`));
    const stopped = await other.waitFor((m) => m.type === 'stopped', 'stopped');
    assert.equal(stopped.reason, 'admin');
    await other.waitClose();
  });

  it('streams results as JSON lines until Ctrl-C, which stops the session', async () => {
    const child = spawn(process.execPath, [CLI, 'stream', '--pipeline', 'demo', '--options', '{"intervalMs":50}'], {
      env: { ...process.env, TANDEM_URL: server.httpUrl('') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done = collect(child);
    let lines = 0;
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        lines = buffered.split('\n').length - 1;
        if (lines >= 3) resolve();
      });
      child.on('close', () => reject(new Error('stream exited before printing 3 results')));
    });
    child.kill('SIGINT');
    const run = await done;
    assert.equal(run.code, 0, run.stderr);
    const messages = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    for (const m of messages) {
      assertServerMessage(m);
      assert.equal(m.type, 'transcript');
    }
    assert.deepEqual(messages.map((m) => m.seq), messages.map((_m, i) => i + 1));
    assert.match(run.stderr, /stopped \(reason client, \d+ results\)/);
  });
});
