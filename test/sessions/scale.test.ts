import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { eventually, startServer, threadCount } from '../helpers/server.js';

const SESSIONS = 1000;

describe('many sessions', () => {
  it(`starts ${SESSIONS} concurrent sessions on a few threads and stops them all at once, leaving nothing`, async () => {
    const server = await startServer({ POOL_IDLE_TIMEOUT_MS: '200', MAX_SESSIONS: String(SESSIONS), MAX_SESSIONS_PER_CLIENT: '0' });
    try {
      const baseline = threadCount();
      const clients: TestClient[] = [];
      for (let i = 0; i < SESSIONS; i += 100) {
        const batch = await Promise.all(Array.from({ length: 100 }, () => TestClient.open(server.wsUrl())));
        clients.push(...batch);
      }
      await Promise.all(clients.map((c) => c.start({ options: { intervalMs: 250 } })));
      assert.equal(server.app.sessions.size, SESSIONS);
      await Promise.all(clients.map((c) => c.waitForTranscripts(2, 60_000)));
      // Every session is running on the shared pool, not a thread of its own.
      assert.ok(threadCount() < baseline + 20, `threads ${threadCount()} stay near the baseline ${baseline}`);
      const live = server.app.sessions.list();

      for (const c of clients) c.send({ command: 'STOP' });
      const stopped = await Promise.all(clients.map((c) => c.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000)));
      await Promise.all(clients.map((c) => c.waitClose(60_000)));

      clients.forEach((c, i) => {
        assertInOrder(c.transcripts());
        assert.equal(stopped[i]!.chunks, c.transcripts().length);
        assert.equal(stopped[i]!.reason, 'client');
        assert.deepEqual(c.invalid, []);
      });
      // stop() is idempotent and answers once a session has fully ended (its spool removed).
      const summaries = await Promise.all(live.map((s) => s.stop('client')));
      assert.equal(summaries.filter((s) => s.forced).length, 0, 'every stop was cooperative, none waited out the grace period');
      assert.equal(server.app.sessions.size, 0);
      await eventually(() => server.spools().length === 0, 'no spool folder left', 30_000);
      await eventually(() => threadCount() <= baseline, `threads back to ${baseline}`, 30_000).catch((err: Error) => {
        throw new Error(`${err.message}; still ${threadCount()} threads; pool ${JSON.stringify(server.app.pool.stats())}`);
      });
    } finally {
      await server.close();
    }
  });
});
