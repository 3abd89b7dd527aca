import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
const UNKNOWN_ID = '0b8d5c7e-1f2a-4c3b-9d4e-5f6a7b8c9d0e';

describe('REST tokens', () => {
  let server: TestServer;
  let base: string;
  before(async () => {
    server = await startServer({ ADMIN_TOKEN: ADMIN, ADMIN_READ_TOKEN: READ });
    base = server.httpUrl('');
  });
  after(() => server.close());

  const operations: Array<[string, string]> = [
    ['GET', '/api/sessions'],
    ['GET', `/api/sessions/${UNKNOWN_ID}`],
    ['POST', `/api/sessions/${UNKNOWN_ID}/stop`],
    ['GET', '/api/pool'],
    ['GET', '/api/pipelines'],
  ];

  it('answers every /api operation without a token with 401 and WWW-Authenticate', async () => {
    for (const [method, path] of operations) {
      const res = await api(base, method, path);
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.body.code, 'UNAUTHORIZED');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="tandem"');
    }
  });

  it('answers a wrong token, or another scheme, with 401 invalid_token', async () => {
    for (const [method, path] of operations) {
      const res = await api(base, method, path, { token: `${ADMIN}x` });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.body.code, 'UNAUTHORIZED');
      assert.match(res.headers.get('www-authenticate')!, /error="invalid_token"/);
    }
    const basic = await api(base, 'GET', '/api/pool', { headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
  });

  it('checks the token before the request: 401, not 400, for a bad request without one', async () => {
    const res = await api(base, 'GET', '/api/sessions?limit=0');
    assert.equal(res.status, 401);
    const authed = await api(base, 'GET', '/api/sessions?limit=0', { token: READ });
    assert.equal(authed.status, 400);
  });

  it('lets the read-only token list and inspect, and refuses it stop with 403', async () => {
    assert.equal((await api(base, 'GET', '/api/sessions', { token: READ })).status, 200);
    assert.equal((await api(base, 'GET', '/api/pool', { token: READ })).status, 200);
    assert.equal((await api(base, 'GET', '/api/pipelines', { token: READ })).status, 200);
    assert.equal((await api(base, 'GET', `/api/sessions/${UNKNOWN_ID}`, { token: READ })).status, 404);

    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 200 } });
    assert.equal((await api(base, 'GET', `/api/sessions/${id}`, { token: READ })).status, 200);
    const refused = await api(base, 'POST', `/api/sessions/${id}/stop`, { token: READ });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'FORBIDDEN');
    assert.match(refused.body.detail, /ADMIN_TOKEN/);
    assert.equal((await api(base, 'GET', `/api/sessions/${id}`, { token: READ })).body.state, 'running', 'a refused stop stops nothing');

    const stopped = await api(base, 'POST', `/api/sessions/${id}/stop`, { token: ADMIN });
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.reason, 'admin');
    await client.waitClose();
    const missing = await api(base, 'POST', `/api/sessions/${UNKNOWN_ID}/stop`, { token: ADMIN });
    assert.equal(missing.status, 404);
  });

  it('keeps probes and the spec open without a token', async () => {
    assert.equal((await api(base, 'GET', '/livez')).status, 200);
    assert.equal((await api(base, 'GET', '/readyz')).status, 200);
    assert.equal((await api(base, 'GET', '/openapi.json')).status, 200);
    assert.equal((await api(base, 'GET', '/openapi.yaml')).status, 200);
    assert.equal((await fetch(server.httpUrl('/docs/'))).status, 200);
  });
});
