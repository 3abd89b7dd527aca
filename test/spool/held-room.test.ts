import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';
import { scrapedValue } from '../helpers/exposition.js';
import { openFilesIn } from '../helpers/proc.js';
import type { StepProducer } from '../../src/sessions/sides.js';

/** Descriptors of this process open on spool segments under `root`. */
const heldSegments = (root: string) => openFilesIn(root).filter((t) => t.endsWith('.seg')).length;

const metric = (server: TestServer, name: string): Promise<number> => scrapedValue(server.httpUrl('/metrics'), name);

describe('held log files leave room under the open-file limit for sockets', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    // A limit of 40 with no reserve: 10 demo sessions hold 2 files each beside their 10 sockets (30).
    server = await startServer({ OPEN_FILES_LIMIT: '40', OPEN_FILES_RESERVE: '0' });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  it('gives files back when new connections need the room and takes them again when they close; every session goes on with no gap', async () => {
    const spoolRoot = path.join(server.dataDir, 'spool');
    const streaming: TestClient[] = [];
    for (let i = 0; i < 10; i++) {
      const c = await TestClient.open(server.wsUrl());
      clients.push(c);
      await c.start({ pipeline: 'demo', options: { intervalMs: 20 } });
      streaming.push(c);
    }
    assert.equal(await metric(server, 'tandem_spool_held_files'), 20, 'all 10 sessions hold both logs');
    await eventually(() => heldSegments(spoolRoot) >= 20, '20 segment descriptors open');
    // Their steps wait 20 ms: all ten are resident (STEP_RESIDENTS), always on their way.
    await eventually(async () => (await metric(server, 'tandem_step_residents')) === 10, 'all 10 sessions resident');
    const adopted = await metric(server, 'tandem_step_residents_adopted_total');

    // 15 more sockets: 20 held + 25 sockets > 40, so three sessions give their two back (14 + 25 ≤ 40).
    for (let i = 0; i < 15; i++) clients.push(await TestClient.open(server.wsUrl()));
    await eventually(async () => (await metric(server, 'tandem_spool_held_files')) === 14, 'held files down to 14');
    assert.equal(await metric(server, 'tandem_spool_held_files_given_back_total'), 6);
    // Really closed: only the steps of the sessions that gave theirs back open files, for a moment.
    await eventually(() => heldSegments(spoolRoot) === 14, 'exactly 14 segment descriptors open');
    // The three that gave theirs back left their thread: a session whose steps open their files
    // runs on the main thread's path. The other seven stayed.
    await eventually(async () => (await metric(server, 'tandem_step_residents')) === 7, 'seven sessions resident');

    // A START now finds no room: its session holds nothing and streams all the same.
    const late = clients[clients.length - 1]!;
    const lateId = await late.start({ pipeline: 'demo', options: { intervalMs: 20 } });
    streaming.push(late);
    await late.waitForTranscripts(5);
    assert.equal(await metric(server, 'tandem_spool_held_files'), 14, 'the late session holds none');
    // Asked of the session itself: the count of residents moves when a preempted consumer of
    // another session runs slow and that one is handed back for a step.
    assert.equal((server.app.sessions.get(lateId)!.producer as StepProducer).resident, false, 'and is not resident');

    // The 14 idle sockets close: 11 sockets leave room for every session's two (22 + 11 ≤ 40), and
    // the four sessions that held none (three gave back, the late one found none) take theirs.
    const idle = clients.filter((c) => !streaming.includes(c));
    for (const c of idle) c.close();
    await eventually(async () => (await metric(server, 'tandem_spool_held_files')) === 22, 'held files back up to 22');
    await eventually(() => heldSegments(spoolRoot) === 22, 'exactly 22 segment descriptors open');
    // Holding their files again, the four are resident at their next step.
    await eventually(async () => (await metric(server, 'tandem_step_residents')) === 11, 'all 11 sessions resident');
    // (A resident may also be handed back and adopted again when a preempted consumer ran slow.)
    assert.ok((await metric(server, 'tandem_step_residents_adopted_total')) >= adopted + 4, 'four residencies begun');

    const counts = streaming.map((c) => c.transcripts().length);
    await eventually(() => streaming.every((c, i) => c.transcripts().length >= counts[i]! + 10), 'every session sent 10 more results', 15_000);
    for (const c of streaming) {
      c.send({ command: 'STOP' });
      await c.waitFor((m) => m.type === 'stopped', 'stopped');
      assertInOrder(c.transcripts());
    }
    await eventually(() => server.spools().length === 0, 'every spool removed');
    assert.equal(await metric(server, 'tandem_spool_held_files'), 0);
    assert.equal(heldSegments(spoolRoot), 0, 'no segment descriptor left open');
  });
});
