import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';
import { listSegments } from '../../src/spool/log.js';
import { openFilesIn } from '../helpers/proc.js';

describe('log segments the main thread holds open', () => {
  let server: TestServer;
  before(async () => {
    // Small segments and a small resume window: both logs roll over, and old segments are removed, within a second.
    server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, SPOOL_SEGMENT_BYTES: '4096', RESUME_RETAIN_BYTES: '4096' });
  });
  after(() => server.close());

  for (const pipeline of ['loop-loop', 'demo']) {
    it(`never pin a removed segment on disk (${pipeline}: its logs roll over while it streams)`, async () => {
      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ pipeline, options: { intervalMs: 0 } });
      const dir = server.app.sessions.get(id)!.spoolDir;
      // Both logs began new segments and their first ones were removed (consumed chunks, results out of the window).
      await eventually(() => {
        const names = fs.readdirSync(dir);
        return (['chunks', 'results'] as const).every((k) => {
          const segs = listSegments(names, k);
          return segs.length > 0 && !segs.includes(1);
        });
      }, 'both logs rolled over and their first segments were removed', 20_000);
      const removed = openFilesIn(dir).filter((t) => t.endsWith('(deleted)'));
      assert.deepEqual(removed, [], 'no descriptor holds a removed segment');
      client.send({ command: 'STOP' });
      await client.waitClose();
      await eventually(() => !fs.existsSync(dir), 'spool removed');
      assert.deepEqual(openFilesIn(dir), [], 'nothing of the ended session is open');
    });
  }
});
