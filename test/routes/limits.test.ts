import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';

const LIMIT_BYTES = 1024;

/** A body sent chunked, without Content-Length: the limit must be counted as it arrives. */
function chunkedBody(totalBytes: number, chunkBytes = 256): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      const n = Math.min(chunkBytes, totalBytes - sent);
      sent += n;
      controller.enqueue(new TextEncoder().encode('"'.padEnd(n, 'x')));
    },
  });
}

describe('REST request limits', () => {
  let server: TestServer;
  let base: string;
  let client: TestClient;
  let id: string;
  before(async () => {
    server = await startServer({ MAX_REQUEST_BODY_BYTES: String(LIMIT_BYTES) });
    base = server.httpUrl('');
    // A live session: every refused stop below must leave it running.
    client = await TestClient.open(server.wsUrl());
    id = await client.start({ options: { intervalMs: 20 } });
  });
  after(async () => {
    client.close();
    await server.close();
  });

  it('answers 413 to a body over MAX_REQUEST_BODY_BYTES, declared or chunked, and closes the connection', async () => {
    const declared = await api(base, 'POST', `/api/sessions/${id}/stop`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(LIMIT_BYTES) }),
    });
    assert.equal(declared.status, 413);
    assert.equal(declared.body.code, 'PAYLOAD_TOO_LARGE');
    assert.match(declared.body.detail, /MAX_REQUEST_BODY_BYTES/);
    assert.equal(declared.headers.get('connection'), 'close');
    const chunked = await api(base, 'POST', `/api/sessions/${id}/stop`, {
      headers: { 'content-type': 'application/json' },
      body: chunkedBody(LIMIT_BYTES * 4),
    });
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.code, 'PAYLOAD_TOO_LARGE');
    assert.equal(server.app.sessions.get(id)?.state, 'running', 'a refused stop stops nothing');
  });

  it('answers 415 to a body that is not JSON, and 400 to JSON that does not parse', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await api(base, 'POST', `/api/sessions/${id}/stop`, { headers: { 'content-type': type }, body: 'a=1' });
      assert.equal(res.status, 415, type);
      assert.equal(res.body.code, 'UNSUPPORTED_MEDIA_TYPE');
    }
    const untyped = await api(base, 'POST', `/api/sessions/${id}/stop`, { body: new Uint8Array([1, 2, 3]) });
    assert.equal(untyped.status, 415);
    const broken = await api(base, 'POST', `/api/sessions/${id}/stop`, { headers: { 'content-type': 'application/json' }, body: '{"oops' });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.code, 'VALIDATION');
    assert.equal(server.app.sessions.get(id)?.state, 'running', 'a refused stop stops nothing');
  });

  it('answers 400 to parameters openapi.yaml does not allow, non-finite numbers included', async () => {
    const bad = [
      ['GET', '/api/sessions?limit=abc'],
      ['GET', '/api/sessions?limit=0'],
      ['GET', '/api/sessions?limit=1e400'],
      ['GET', '/api/sessions?limit=Infinity'],
      ['GET', '/api/sessions?state=sleeping'],
      ['GET', '/api/sessions?cursor=%ZZ'],
      ['GET', '/api/sessions?verbose=1'],
      ['GET', '/api/sessions/not-a-uuid'],
      ['POST', `/api/sessions/${id}/stop?timeout=-1`],
      ['POST', `/api/sessions/${id}/stop?timeout=Infinity`],
      ['POST', `/api/sessions/${id}/stop?timeout=1e400`],
    ] as const;
    for (const [method, path] of bad) {
      const res = await api(base, method, path);
      assert.equal(res.status, 400, `${method} ${path}`);
      assert.equal(res.body.code, 'VALIDATION', `${method} ${path}`);
    }
    assert.equal(server.app.sessions.get(id)?.state, 'running', 'a refused stop stops nothing');
  });

  it('answers every path nothing serves with a problem document, not an HTML page', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/livez'], ['DELETE', '/metrics']] as const) {
      const res = await fetch(base + path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const body = (await res.json()) as { code: string; detail: string };
      assert.equal(body.code, 'NOT_FOUND');
      assert.doesNotMatch(JSON.stringify(body), /\bat .+:\d+:\d+/, 'no stack trace');
    }
  });

  it('still takes a stop with no body, or an empty JSON one', async () => {
    const res = await api(base, 'POST', `/api/sessions/${id}/stop`, { headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 200);
    assert.equal(res.body.reason, 'admin');
    await client.waitClose();
  });
});
