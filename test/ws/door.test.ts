import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { TestClient } from '../helpers/client.js';
import { eventually, FIXTURE_PIPELINES, startServer, type TestServer } from '../helpers/server.js';

interface HandshakeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Sends a raw WebSocket upgrade and returns the HTTP answer (101 when accepted). */
function upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<HandshakeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const TOKEN = 'client-token-0123456789';

describe('at the door: checks before the upgrade', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      CLIENT_TOKEN: TOKEN,
      ALLOWED_ORIGINS: 'https://app.example,http://localhost:3000',
      MAX_SESSIONS_PER_CLIENT: '3',
    });
  });
  after(() => server.close());
  const auth = { Authorization: `Bearer ${TOKEN}` };

  it('refuses an unknown path with 404 problem+json instead of accepting and dropping it', async () => {
    const r = await upgrade(server.port, '/nope', auth);
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const problem = JSON.parse(r.body);
    assert.equal(problem.code, 'NOT_FOUND');
    assert.match(problem.detail, /\/ws or \/live-transcription/);
    assert.equal(problem.stack, undefined);
  });

  it('refuses an Origin that is not allowed with 403 and accepts listed ones', async () => {
    const evil = await upgrade(server.port, '/ws', { ...auth, Origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(JSON.parse(evil.body).code, 'FORBIDDEN_ORIGIN');
    assert.equal((await upgrade(server.port, '/ws', { ...auth, Origin: 'https://app.example' })).status, 101);
    // Programs send no Origin: they are judged by their token alone.
    assert.equal((await upgrade(server.port, '/ws', auth)).status, 101);
  });

  it('requires the client token: 401 without or with a wrong one, by header or browser subprotocol', async () => {
    const none = await upgrade(server.port, '/ws');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    assert.equal(JSON.parse(none.body).code, 'UNAUTHORIZED');
    assert.equal((await upgrade(server.port, '/ws', { Authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.equal((await upgrade(server.port, '/ws', { 'Sec-WebSocket-Protocol': 'tandem, bearer.wrong' })).status, 401);
    // A browser cannot set headers on a WebSocket: it offers the token as a subprotocol.
    const viaProtocol = await upgrade(server.port, '/ws', { 'Sec-WebSocket-Protocol': `tandem, bearer.${TOKEN}` });
    assert.equal(viaProtocol.status, 101);
    assert.equal(viaProtocol.headers['sec-websocket-protocol'], 'tandem', 'the token is never echoed back');
    const client = await TestClient.open(server.wsUrl(), { headers: auth });
    await client.start({ options: { intervalMs: 10 } });
    await client.waitForTranscripts(1);
    client.close();
  });

  it('refuses more connections per client address than allowed with 503 and Retry-After, then admits again', async () => {
    await eventually(() => server.app.sessions.size === 0, 'earlier sessions gone');
    const held = await Promise.all([1, 2, 3].map(() => TestClient.open(server.wsUrl(), { headers: auth })));
    const refused = await upgrade(server.port, '/ws', auth);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '5');
    assert.equal(JSON.parse(refused.body).code, 'TOO_MANY_CLIENT_SESSIONS');
    held[0]!.close();
    await held[0]!.waitClose();
    await eventually(async () => (await upgrade(server.port, '/ws', auth)).status === 101, 'a slot is free again');
    for (const c of held.slice(1)) c.close();
  });
});

describe('at the door: names and addresses', () => {
  it('refuses a Host it does not answer to on loopback (DNS rebinding), for the API and the WebSocket', async () => {
    const server = await startServer();
    try {
      const api = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: server.port, path: '/api/sessions', headers: { Host: `evil.example:${server.port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      assert.equal(api, 403);
      const ws = await upgrade(server.port, '/ws', { Host: `evil.example:${server.port}`, Origin: `http://evil.example:${server.port}` });
      assert.equal(ws.status, 403);
      assert.equal(JSON.parse(ws.body).code, 'FORBIDDEN_HOST');
      assert.equal((await upgrade(server.port, '/ws', { Host: `localhost:${server.port}` })).status, 101);
      assert.equal((await fetch(server.httpUrl('/api/sessions'))).status, 200);
    } finally {
      await server.close();
    }
  });

  it('counts sessions waiting for RESUME against the per-address limit', async () => {
    const server = await startServer({ MAX_SESSIONS_PER_CLIENT: '2', RESUME_GRACE_MS: '30000' });
    try {
      for (let i = 0; i < 2; i++) {
        const c = await TestClient.open(server.wsUrl());
        await c.start({ options: { intervalMs: 100 } });
        c.terminate(); // detached, still running for the resume window
      }
      await eventually(() => server.app.sessions.list().every((s) => !s.attached), 'both detached');
      const refused = await upgrade(server.port, '/ws');
      assert.equal(refused.status, 503);
      assert.equal(JSON.parse(refused.body).code, 'TOO_MANY_CLIENT_SESSIONS');
    } finally {
      await server.close();
    }
  });
});

describe('capacity: a clear refusal before anything starts, never an endless queue', () => {
  it('refuses a START that needs more loop threads than are free with NO_LOOP_THREADS and close 1013; steps still start', async () => {
    const server = await startServer({ PIPELINES_DIR: FIXTURE_PIPELINES, LOOP_MAX_THREADS: '2' });
    try {
      const first = await TestClient.open(server.wsUrl());
      await first.start({ pipeline: 'loop-loop', options: { intervalMs: 5 } }); // holds both loop threads
      const second = await TestClient.open(server.wsUrl());
      second.send({ command: 'START', pipeline: 'loop-loop' });
      const err = await second.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'NO_LOOP_THREADS');
      assert.match(err.message!, /needs 2 loop thread\(s\) and 0 of LOOP_MAX_THREADS=2 are free/);
      assert.equal(await second.waitClose(), 1013);
      // Step-shaped sessions do not need loop threads, and the first session keeps streaming.
      const stepper = await TestClient.open(server.wsUrl());
      await stepper.start({ options: { intervalMs: 5 } });
      await stepper.waitForTranscripts(2);
      const n = first.transcripts().length;
      await first.waitForTranscripts(n + 3);
      // Once the loops are released, a loop session starts again.
      first.send({ command: 'STOP' });
      await first.waitClose();
      const third = await TestClient.open(server.wsUrl());
      await third.start({ pipeline: 'loop-loop', options: { intervalMs: 5 } });
      await third.waitForTranscripts(1);
      for (const c of [stepper, third]) c.close();
    } finally {
      await server.close();
    }
  });

  it('refuses sessions over MAX_SESSIONS: 503 with Retry-After at the door, TOO_MANY_SESSIONS and 1013 at START', async () => {
    const server = await startServer({ MAX_SESSIONS: '2' });
    try {
      const clients = await Promise.all([1, 2, 3].map(() => TestClient.open(server.wsUrl())));
      await clients[0]!.start({ options: { intervalMs: 20 } });
      await clients[1]!.start({ options: { intervalMs: 20 } });
      // Connected before the limit was reached: refused at START.
      clients[2]!.send({ command: 'START' });
      const err = await clients[2]!.waitFor((m) => m.type === 'error', 'error');
      assert.equal(err.code, 'TOO_MANY_SESSIONS');
      assert.equal(await clients[2]!.waitClose(), 1013);
      // A new connection is refused at the door.
      const door = await upgrade(server.port, '/ws');
      assert.equal(door.status, 503);
      assert.equal(door.headers['retry-after'], '5');
      assert.equal(JSON.parse(door.body).code, 'TOO_MANY_SESSIONS');
      // The admitted sessions are untouched.
      await Promise.all(clients.slice(0, 2).map((c) => c.waitForTranscripts(3)));
      for (const c of clients) c.close();
    } finally {
      await server.close();
    }
  });
});

describe('on an open connection', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ MAX_MESSAGE_BYTES: '1024', MAX_MESSAGES_PER_SECOND: '5', HEARTBEAT_INTERVAL_MS: '300', RESUME_GRACE_MS: '0' });
  });
  after(() => server.close());

  it('closes 1009 on a frame over MAX_MESSAGE_BYTES without disturbing other sessions', async () => {
    const bystander = await TestClient.open(server.wsUrl());
    await bystander.start({ options: { intervalMs: 5 } });
    const client = await TestClient.open(server.wsUrl());
    client.send(JSON.stringify({ command: 'START', url: 'x'.repeat(2000) }));
    assert.equal(await client.waitClose(), 1009);
    const n = bystander.transcripts().length;
    await bystander.waitForTranscripts(n + 3);
    bystander.send({ command: 'STOP' });
    await bystander.waitClose();
  });

  it('closes 1008 with RATE_LIMITED when a client floods, and ends its session', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 50 } });
    for (let i = 0; i < 50; i++) client.send('{"command":"PING"}');
    const err = await client.waitFor((m) => m.code === 'RATE_LIMITED', 'RATE_LIMITED');
    assert.equal(err.type, 'error');
    assert.equal(await client.waitClose(), 1008);
    assert.deepEqual(client.invalid, []);
    await eventually(() => server.app.sessions.get(id) === undefined, 'flooder session ended');
  });

  it('finds a peer that stops answering pings, drops it and ends its session', async () => {
    const client = await TestClient.open(server.wsUrl());
    const id = await client.start({ options: { intervalMs: 50 } });
    // Make this peer deaf to pings, as a vanished host would be.
    (client.ws as WebSocket & { pong: () => void }).pong = () => {};
    const session = server.app.sessions.get(id)!;
    await eventually(() => session.summary !== null, 'session ended by the heartbeat', 10_000);
    assert.equal(session.summary!.reason, 'disconnect');
    assert.equal(await client.waitClose(), 1006);
  });
});
