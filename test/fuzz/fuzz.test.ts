import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { assertInOrder, TestClient } from '../helpers/client.js';
import { LogCapture } from '../helpers/logs.js';
import { api } from '../helpers/openapi.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';
import { httpCase, Rng, wsFrame, type HttpCase } from './generators.js';

/**
 * Seeded fuzzing of both doors: thousands of hostile WebSocket frames over several connections
 * and random REST requests. FUZZ_ITERATIONS (frames; a third as many requests) makes a run longer,
 * FUZZ_SEED replays one; both are in the suite's name, so every report says how to reproduce it.
 *
 * `npm test` runs FIXED_SEEDS, so it tests the same input every time (a seed that once found a
 * bug stays in the list); `npm run fuzz` sets FUZZ_RANDOM=1 and draws a new seed per run.
 */
const FIXED_SEEDS = [
  // Sent a valid START with keep: true, whose kept spool outlived the run ("no spool left").
  1551367587,
  20261130,
  7,
];
const SEEDS = process.env.FUZZ_SEED
  ? [Number(process.env.FUZZ_SEED) >>> 0]
  : process.env.FUZZ_RANDOM === '1'
    ? [(Date.now() ^ (process.pid << 16)) >>> 0]
    : FIXED_SEEDS;
const FRAMES = Number(process.env.FUZZ_ITERATIONS ?? 3000);
const REQUESTS = Math.ceil(FRAMES / 3);
const CONNECTIONS = 6;
const HTTP_CONCURRENCY = 4;
const MAX_MESSAGE_BYTES = 4096;
const MAX_BODY_BYTES = 2048;

/** Close codes a hostile client may earn; anything else (1011 above all) is a server failure. */
const EXPECTED_CLOSES = new Set([
  1000, // STOP with nothing running, or the session ended
  1005, // closed by us without a code
  1006, // dropped while closing
  1007, // text frame that is not UTF-8 (ws)
  1008, // rate limit (should not happen here: the limit is set high)
  1009, // frame over MAX_MESSAGE_BYTES
]);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

function send(port: number, c: HttpCase): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers: c.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(c.body ?? undefined);
  });
}

for (const SEED of SEEDS) {
  const REPRODUCE = `npm run build && FUZZ_SEED=${SEED} FUZZ_ITERATIONS=${FRAMES} node scripts/run-tests.mjs fuzz`;

  describe(`fuzz, seed ${SEED} (reproduce: ${REPRODUCE})`, () => {
    let server: TestServer;
    const logs = new LogCapture();
    const unhandled: unknown[] = [];
    const uncaught: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    const onUncaught = (err: unknown) => uncaught.push(err);
    const clients: TestClient[] = [];
    const why = (what: string) => `${what} (reproduce: ${REPRODUCE})`;

    before(async () => {
      process.on('unhandledRejection', onUnhandled);
      process.on('uncaughtException', onUncaught);
      server = await startServer(
        {
          LOG_LEVEL: 'warn',
          MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
          MAX_REQUEST_BODY_BYTES: String(MAX_BODY_BYTES),
          // Above the fuzzer's pace: this test is about malformed input, not floods (test/ws/door.test.ts has those).
          MAX_MESSAGES_PER_SECOND: '100000',
          MAX_SESSIONS_PER_CLIENT: '0',
          STOP_GRACE_MS: '500',
          // Fuzzed connections often drop without a close frame: end their sessions at once instead
          // of keeping them for RESUME (test/ws/resume.test.ts covers the window).
          RESUME_GRACE_MS: '0',
          // A valid START may ask to keep its spool: allowed here, so that path is fuzzed too, and
          // every kept spool is deleted over REST at the end (the default refuses keep).
          KEPT_SPOOLS_ALLOWED: 'true',
        },
        { logs },
      );
    });

    after(async () => {
      for (const c of clients) c.terminate();
      await server.close();
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUncaught);
    });

    it('answers thousands of malformed frames on several connections with protocol errors or closes, never a crash', async () => {
      const kinds = new Map<string, number>();
      async function lane(index: number, frames: number): Promise<void> {
        const rng = new Rng(SEED + index);
        let client: TestClient | null = null;
        for (let i = 0; i < frames; i++) {
          if (!client || client.ws.readyState !== WebSocket.OPEN) {
            client = await TestClient.open(server.wsUrl(rng.chance(0.5) ? '/ws' : '/live-transcription'));
            clients.push(client);
          }
          const frame = wsFrame(rng, MAX_MESSAGE_BYTES);
          kinds.set(frame.kind, (kinds.get(frame.kind) ?? 0) + 1);
          const from = client.messages.length;
          client.ws.send(frame.data, { binary: frame.binary });
          if (frame.awaitAnswer) {
            // Its answer (or the close) says whether the connection is still usable for the next frame.
            const answered = client;
            await eventually(() => answered.messages.length > from || answered.closeCode !== null, why(`an answer to a ${frame.kind} frame`));
          } else if (i % 8 === 7) {
            await tick();
          }
        }
      }
      const perLane = Math.ceil(FRAMES / CONNECTIONS);
      await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => lane(i, perLane)));
      for (const c of clients) if (c.ws.readyState === WebSocket.OPEN) c.send({ command: 'STOP' });
      await Promise.all(clients.map((c) => c.waitClose(30_000)));

      const invalid = clients.flatMap((c) => c.invalid);
      assert.deepEqual(invalid.slice(0, 5), [], why('every reply matches asyncapi.yaml'));
      const internal = clients.flatMap((c) => c.messages).filter((m) => m.type === 'error' && (m.code === 'INTERNAL' || m.code === 'PIPELINE_FAILED'));
      assert.deepEqual(internal.slice(0, 5), [], why('no internal error'));
      const closes = new Map<number, number>();
      for (const c of clients) closes.set(c.closeCode!, (closes.get(c.closeCode!) ?? 0) + 1);
      const unexpected = [...closes.keys()].filter((code) => !EXPECTED_CLOSES.has(code));
      assert.deepEqual(unexpected, [], why(`only expected close codes: ${JSON.stringify([...closes])}`));
      const errors = clients.flatMap((c) => c.messages).filter((m) => m.type === 'error').length;
      assert.ok(errors > FRAMES / 2, why(`most garbage is answered with an error frame (${errors} of ${FRAMES})`));
      // The frame kinds are all exercised (a generator that silently stopped would be caught here).
      assert.ok(kinds.size >= 12, why(`frame kinds sent: ${JSON.stringify([...kinds])}`));
    });

    it('answers random REST requests with 2xx-4xx, problem+json for errors, never a stack trace', async () => {
      // A few live sessions, so that random stops and inspects also hit real ids.
      const live = await Promise.all([1, 2, 3].map(() => TestClient.open(server.wsUrl())));
      clients.push(...live);
      const ids = await Promise.all(live.map((c) => c.start({ options: { intervalMs: 20 } })));
      const rng = new Rng(SEED ^ 0x5eed);
      const cases = Array.from({ length: REQUESTS }, () => httpCase(rng, ids, MAX_BODY_BYTES));
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let next = 0;
      async function worker(): Promise<void> {
        while (next < cases.length) {
          const c = cases[next++]!;
          const label = `${c.method} ${c.path.slice(0, 120)} ${JSON.stringify(c.headers)} body=${c.body?.length ?? 0}`;
          let res: HttpAnswer;
          try {
            res = await send(server.port, c);
          } catch (err) {
            // A body the server refused unread (413, connection closed) may reset our upload: that is the point.
            const refusedBody = (c.body?.length ?? 0) > MAX_BODY_BYTES;
            if (!refusedBody) failures.push(`${label}: ${(err as Error).message}`);
            continue;
          }
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500) failures.push(`${label}: ${res.status} ${res.body.slice(0, 300)}`);
          if (/\bat .+:\d+:\d+\)?/.test(res.body) && !res.contentType.startsWith('text/html') && !res.contentType.includes('javascript')) {
            failures.push(`${label}: a stack trace in ${res.body.slice(0, 300)}`);
          }
          if (res.status >= 400 && c.method !== 'HEAD' && !res.contentType.startsWith('application/problem+json')) {
            failures.push(`${label}: ${res.status} as ${res.contentType}, not problem+json`);
          }
        }
      }
      await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
      assert.deepEqual(failures.slice(0, 10), [], why(`${failures.length} bad answers; statuses ${JSON.stringify([...statuses])}`));
      assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0 && (statuses.get(404) ?? 0) > 0, why(`statuses ${JSON.stringify([...statuses])}`));
    });

    it('is still whole afterwards: alive, streams a normal session in order, nothing left behind, nothing unhandled', async (t) => {
      const livez = await fetch(server.httpUrl('/livez'), { headers: { connection: 'close' } });
      assert.equal(livez.status, 200);
      const client = await TestClient.open(server.wsUrl());
      clients.push(client);
      await client.start({ options: { intervalMs: 5 } });
      await client.waitForTranscripts(5);
      client.send({ command: 'STOP' });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped');
      assert.equal(stopped.reason, 'client');
      assertInOrder(client.transcripts());
      for (const c of clients) if (c.ws.readyState === WebSocket.OPEN) c.close();
      await eventually(() => server.app.sessions.size === 0, why('every fuzzed session ended'));
      // Spools the fuzzer asked to keep are listed, not live, and go with DELETE; nothing else stays.
      const kept = await api(server.httpUrl(''), 'GET', '/api/spools');
      assert.equal(kept.status, 200);
      const keptIds = (kept.body.items as Array<{ id: string; live: boolean }>).map((s) => {
        assert.equal(s.live, false, why(`kept spool ${s.id} of an ended session is not live`));
        return s.id;
      });
      for (const id of keptIds) {
        const res = await api(server.httpUrl(''), 'DELETE', `/api/spools/${id}`);
        assert.equal(res.status, 200, why(`DELETE kept spool ${id}`));
      }
      if (keptIds.length > 0) t.diagnostic(`deleted ${keptIds.length} kept spool(s) the fuzzer asked for`);
      await eventually(() => server.spools().length === 0, why('no spool left'));
      assert.deepEqual(unhandled.map(String), [], why('no unhandled rejection'));
      assert.deepEqual(uncaught.map(String), [], why('no uncaught exception'));
      const errorLogs = logs.lines.filter((l) => l.level >= 50);
      assert.deepEqual(errorLogs.slice(0, 5), [], why('nothing logged at error level'));
    });
  });
}
