import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serverPathRedactor } from '../../src/ws/redact.js';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

/** An absolute path as it would appear in a message: after a start, a space, a quote or '('. */
const ABSOLUTE_PATH = /(?:^|[\s'"(=])\/[^\s'"]+/;

describe('server paths in client errors', () => {
  it('replaces the DATA_DIR prefix, resolved or not, and cuts other quoted absolute paths to their last part', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-redact-'));
    try {
      const real = path.join(base, 'real');
      fs.mkdirSync(real);
      const link = path.join(base, 'link');
      fs.symlinkSync(real, link);
      const redact = serverPathRedactor(link);
      assert.equal(
        redact(`ENOENT: no such file or directory, open '${link}/spool/abc/000000000006.tmp'`),
        "ENOENT: no such file or directory, open 'DATA_DIR/spool/abc/000000000006.tmp'",
      );
      assert.equal(redact(`EACCES: permission denied, rename '${real}/spool/a.tmp' -> '${real}/spool/a.chunk'`), "EACCES: permission denied, rename 'DATA_DIR/spool/a.tmp' -> 'DATA_DIR/spool/a.chunk'");
      assert.equal(redact(`${link}2/x`), `${link}2/x`, 'a sibling folder that only starts like DATA_DIR is not DATA_DIR');
      assert.equal(redact("ENOENT: no such file or directory, open '/etc/tandem/secret.json'"), "ENOENT: no such file or directory, open '…/secret.json'");
      assert.equal(redact('boom at chunk 3'), 'boom at chunk 3');
      assert.equal(redact('url "file:///logs/app.log" is fine'), 'url "file:///logs/app.log" is fine', 'a URL the client sent is not a server path');
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  describe('over a real session', () => {
    let server: TestServer;
    const clients: TestClient[] = [];
    before(async () => {
      server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES });
    });
    after(async () => {
      for (const c of clients) c.terminate();
      await server.close();
    });

    it('sends PIPELINE_FAILED without an absolute path, while inspect and the log keep the full message', async () => {
      const missing = path.join(server.dataDir, 'spool', 'gone', '000000000006.tmp');
      const client = await TestClient.open(server.wsUrl());
      clients.push(client);
      const id = await client.start({ pipeline: 'throws', options: { failAt: 2, how: 'read', path: missing } });
      const err = await client.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'PIPELINE_FAILED');
      assert.match(err.message!, /ENOENT/);
      assert.ok(!err.message!.includes(server.dataDir), err.message);
      assert.doesNotMatch(err.message!, ABSOLUTE_PATH);
      assert.ok(err.message!.includes("'DATA_DIR/spool/gone/000000000006.tmp'"), err.message);
      await client.waitClose();

      const inspected = await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`);
      assert.equal(inspected.status, 200);
      assert.ok(String(inspected.body.error).includes(missing), 'operators see the full path');
    });
  });
});
