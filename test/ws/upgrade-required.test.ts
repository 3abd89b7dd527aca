import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('plain HTTP on a WebSocket path', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  for (const path of ['/ws', '/live-transcription']) {
    it(`GET ${path} without an upgrade answers 426 saying how to connect`, async () => {
      const res = await api(server.httpUrl(''), 'GET', path);
      assert.equal(res.status, 426);
      assert.equal(res.headers.get('upgrade'), 'websocket');
      assert.equal(res.body.code, 'UPGRADE_REQUIRED');
      assert.ok(res.body.detail.includes(`ws://127.0.0.1:${server.port}${path}`), res.body.detail);
      assert.match(res.body.detail, /\/asyncapi\.yaml/);
    });
  }
});
