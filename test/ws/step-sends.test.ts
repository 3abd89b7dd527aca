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
