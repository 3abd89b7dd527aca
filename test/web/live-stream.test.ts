import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { LiveViewer } from '../helpers/live.js';
import { assertResponseMatchesSpec } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'live-admin-token-0123456789';
const READ = 'live-read-token-0123456789';
const MAX_VIEWERS = 2;

describe('GET /api/live: the live view\'s event stream', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ ADMIN_TOKEN: ADMIN, ADMIN_READ_TOKEN: READ, LIVE_MAX_VIEWERS: String(MAX_VIEWERS), LIVE_HEARTBEAT_MS: '1000' });
  });
  after(() => server.close());

  it('refuses a viewer without a token, or with a wrong one, with 401 and says why', async () => {
    for (const token of [undefined, 'not-the-token-at-all-0000']) {
      const { status, headers, body } = await LiveViewer.open(server.httpUrl(''), token);
      assert.equal(status, 401);
      assert.match(headers.get('www-authenticate') ?? '', /^Bearer realm="tandem"/);
      const problem = JSON.parse(body!);
      assertResponseMatchesSpec('GET', '/api/live', 401, headers.get('content-type'), problem);
      assert.equal(problem.code, 'UNAUTHORIZED');
    }
  });

  it('says hello with what the token may do, then shows a session as it starts and ends', async () => {
    const admin = (await LiveViewer.open(server.httpUrl(''), ADMIN)).viewer!;
    const read = (await LiveViewer.open(server.httpUrl(''), READ)).viewer!;
    try {
      const hello = await admin.waitFor((e) => e.event === 'hello', 'hello');
      assert.equal(hello.data.role, 'admin');
      assert.equal(hello.data.canStop, true);
      const readHello = await read.waitFor((e) => e.event === 'hello', 'hello');
      assert.equal(readHello.data.role, 'read');
      assert.equal(readHello.data.canStop, false);

      const client = await TestClient.open(server.wsUrl());
      const id = await client.start({ options: { intervalMs: 50 } });
      await admin.waitFor((e) => e.event === 'snapshot' && e.data.sessions.some((s: any) => s.id === id && s.state === 'running' && s.delivered > 0), 'the running session with results');
      client.send({ command: 'STOP' });
      await client.waitClose();
      const ended = await admin.waitFor((e) => e.event === 'snapshot' && e.data.sessions.some((s: any) => s.id === id && s.state === 'stopped'), 'the session stopped');
      const row = ended.data.sessions.find((s: any) => s.id === id);
      assert.equal(row.endReason, 'client');
      assert.equal(row.producerThreadId, null);
      await read.waitFor((e) => e.event === 'snapshot' && e.data.sessions.some((s: any) => s.id === id && s.state === 'stopped'), 'the read-only viewer sees it too');
    } finally {
      admin.close();
      read.close();
    }
  });

  it('sends heartbeat comments while nothing changes', async () => {
    const viewer = (await LiveViewer.open(server.httpUrl(''), READ)).viewer!;
    try {
      await viewer.waitFor((e) => e.event === 'comment' && e.data === 'heartbeat', 'a heartbeat');
    } finally {
      viewer.close();
    }
  });

  it(`refuses a viewer over LIVE_MAX_VIEWERS with 503 TOO_MANY_VIEWERS, and takes one again once a viewer left`, async () => {
    const viewers: LiveViewer[] = [];
    try {
      for (let i = 0; i < MAX_VIEWERS; i++) {
        const v = (await LiveViewer.open(server.httpUrl(''), READ)).viewer!;
        viewers.push(v);
        await v.waitFor((e) => e.event === 'hello', 'hello');
      }
      const over = await LiveViewer.open(server.httpUrl(''), READ);
      assert.equal(over.status, 503);
      assert.equal(over.headers.get('retry-after'), '5');
      const problem = JSON.parse(over.body!);
      assertResponseMatchesSpec('GET', '/api/live', 503, over.headers.get('content-type'), problem);
      assert.equal(problem.code, 'TOO_MANY_VIEWERS');
      assert.match(problem.detail, /LIVE_MAX_VIEWERS/);

      viewers.pop()!.close();
      // The server learns of the closed stream asynchronously: ask until it has.
      let again = await LiveViewer.open(server.httpUrl(''), READ);
      for (let i = 0; again.status === 503 && i < 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await LiveViewer.open(server.httpUrl(''), READ);
      }
      assert.equal(again.status, 200);
      viewers.push(again.viewer!);
    } finally {
      for (const v of viewers) v.close();
    }
  });

  it('ends every stream when the service shuts down', async () => {
    const other = await startServer();
    const viewer = (await LiveViewer.open(other.httpUrl(''))).viewer!;
    await viewer.waitFor((e) => e.event === 'snapshot', 'a snapshot');
    await other.close();
    await viewer.waitEnd();
  });
});
