import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient, assertInOrder } from '../helpers/client.js';
import { scrapedValue } from '../helpers/exposition.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A counter's value in the server's /metrics. */
const metric = (server: TestServer, name: string): Promise<number> => scrapedValue(server.httpUrl('/metrics'), name);

/**
 * Runs `clients` demo sessions until each got `n` transcripts, then STOPs them: every stream in
 * order with no gap, nothing after `stopped`, and `stopped.chunks` what the client got.
 */
async function runSessions(server: TestServer, clients: number, n: number): Promise<number> {
  const open = await Promise.all(Array.from({ length: clients }, () => TestClient.open(server.wsUrl())));
  for (const c of open) await c.start({ pipeline: 'demo', options: { intervalMs: 15 } });
  let received = 0;
  for (const c of open) {
    await c.waitForTranscripts(n);
    c.send({ command: 'STOP' });
    assert.equal(await c.waitClose(), 1000);
    const transcripts = c.transcripts();
    assertInOrder(transcripts);
    const last = c.messages[c.messages.length - 1]!;
    assert.equal(last.type, 'stopped', 'stopped comes last: no transcript after it');
    assert.equal(last.chunks, transcripts.length, 'stopped counts what the client got');
    assert.deepEqual(c.invalid, []);
    received += transcripts.length;
  }
  return received;
}

describe('step threads write live results into the client socket (STEP_SENDS)', () => {
  let server: TestServer;
  let off: TestServer;
  before(async () => {
    server = await startServer();
    off = await startServer({ STEP_SENDS: 'false' });
  });
  after(async () => {
    await server.close();
    await off.close();
  });

  it('sends results from the step threads, each once and in order, with `stopped` last', async () => {
    const received = await runSessions(server, 4, 40);
    const byThreads = await metric(server, 'tandem_ws_results_sent_by_step_threads_total');
    assert.ok(byThreads > 0, 'step threads wrote results');
    assert.ok(byThreads <= received, `no more written by threads (${byThreads}) than received (${received})`);
    // started + transcripts + stopped per session: a frame a thread wrote counts once.
    assert.equal(await metric(server, 'tandem_ws_messages_sent_total'), received + 2 * 4);
  });

  it('with STEP_SENDS=false the main thread sends every result', async () => {
    const received = await runSessions(off, 2, 20);
    assert.equal(await metric(off, 'tandem_ws_results_sent_by_step_threads_total'), 0);
    assert.equal(await metric(off, 'tandem_ws_messages_sent_total'), received + 2 * 2);
  });
});

describe('heartbeat pings written straight into the socket while step threads write it', () => {
  const HEARTBEAT_MS = 300;
  let server: TestServer;
  before(async () => {
    server = await startServer({ HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) });
  });
  after(() => server.close());

  it('pings a client between its results without splitting a frame, and keeps it while it answers', async () => {
    const client = await TestClient.open(server.wsUrl());
    let pings = 0;
    client.ws.on('ping', () => pings++);
    const id = await client.start({ pipeline: 'demo', options: { intervalMs: 15 } });
    const directBefore = await metric(server, 'tandem_ws_pings_total{written="direct"}');
    // Results keep coming through several heartbeats: each ping lands between two whole frames.
    await client.waitForTranscripts(20);
    const from = client.transcripts().length;
    const until = Date.now() + 6 * HEARTBEAT_MS;
    while (Date.now() < until) await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
    assert.ok(pings >= 3, `the client was pinged through the heartbeats (${pings} pings)`);
    assert.ok(client.transcripts().length > from, 'results went on');
    assert.ok((await metric(server, 'tandem_ws_pings_total{written="direct"}')) > directBefore, 'pings went straight into the socket');
    assert.equal(server.app.sessions.get(id)?.summary, null, 'a client that answers is kept');
    client.send({ command: 'STOP' });
    assert.equal(await client.waitClose(), 1000);
    const transcripts = client.transcripts();
    assertInOrder(transcripts);
    assert.deepEqual(client.invalid, [], 'every frame whole');
    assert.equal(client.messages[client.messages.length - 1]!.type, 'stopped');
  });
});
