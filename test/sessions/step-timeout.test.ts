import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertInOrder, TestClient, type ServerMessage } from '../helpers/client.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

/**
 * STEP_TIMEOUT_MS limits one call of a pipeline's step, not a pool task's entry, which may make
 * many calls: a consume step's chunks (up to CONSUMER_BATCH_MAX), or a producer's step and the
 * consumer lent to it on every chunk that step wrote. Every call here takes SLOW_MS, well under
 * the limit; the calls of one entry add up to more than it.
 */
const STEP_TIMEOUT_MS = 1500;
const SLOW_MS = 250;
/** Chunks whose consumer calls, run back to back, take longer than the limit. */
const OVER_THE_LIMIT = Math.ceil(STEP_TIMEOUT_MS / SLOW_MS) + 1;

/**
 * Results of one answer reach the client in one flush: the longest run of transcripts the server
 * sent within a few ms of each other, although each took SLOW_MS to make, is the most chunks one
 * entry consumed.
 */
function largestAnswer(transcripts: readonly ServerMessage[]): number {
  let largest = 0;
  let run = 0;
  let last = -Infinity;
  for (const t of transcripts) {
    const at = t.timestamp! * 1000;
    run = at - last < SLOW_MS / 5 ? run + 1 : 1;
    last = at;
    largest = Math.max(largest, run);
  }
  return largest;
}

describe(`STEP_TIMEOUT_MS (${STEP_TIMEOUT_MS} ms) times one call of a step, not a task that makes many`, () => {
  let server: TestServer;
  before(async () => {
    // One chunk per produce task unless a single producer step writes more: the consumer then
    // falls behind and is sent consume steps of many chunks.
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS), PRODUCER_BURST_CHUNKS: '1' });
  });
  after(() => server.close());

  const cases = [
    // One producer step writes every chunk; the consumer lent to that step takes them all.
    { label: 'a consumer lent to a producer step that wrote many chunks', options: { chunksPerStep: OVER_THE_LIMIT + 2, steps: 1 } },
    // A chunk per producer step: the consumer, slow from the start, is sent the backlog in consume
    // steps. Three times the chunks needed: however the producer's round trips fall against the
    // consumer's calls, some consume step takes more than OVER_THE_LIMIT of them.
    { label: 'a consumer sent a consume step of many chunks', options: { chunksPerStep: 1, steps: OVER_THE_LIMIT * 3 } },
  ];
  for (const c of cases) {
    it(`${c.label} runs to completion: no call came near the limit`, async () => {
      const total = c.options.chunksPerStep * c.options.steps;
      const client = await TestClient.open(server.wsUrl());
      await client.start({ pipeline: 'counted-chunks', options: { ...c.options, slowFrom: 1, slowTo: total, slowMs: SLOW_MS } });
      const stopped = await client.waitFor((m) => m.type === 'stopped', 'stopped', 0, 60_000);
      assert.deepEqual(
        client.messages.filter((m) => m.type === 'error'),
        [],
        'no error: the limit ended no step',
      );
      assert.equal(stopped.reason, 'completed');
      const transcripts = client.transcripts();
      assertInOrder(transcripts);
      assert.deepEqual(
        transcripts.map((t) => (t.data as { text: string }).text),
        Array.from({ length: total }, (_, i) => `p${i + 1}`),
        'every chunk was consumed once, in order',
      );
      // The premise: one entry did consume enough chunks to run past the limit in all.
      assert.ok(largestAnswer(transcripts) >= OVER_THE_LIMIT, `one answer carried ${largestAnswer(transcripts)} results; ${OVER_THE_LIMIT} are needed to test the limit`);
      await client.waitClose();
    });
  }
});
