import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';

interface Answer {
  status: number;
  body: string;
}

/**
 * A request as a reverse proxy on this machine sends it: to 127.0.0.1, with the Host it chose.
 * With `upgrade` it asks for a WebSocket and the answer is 101 when accepted.
 */
function proxied(port: number, path: string, headers: Record<string, string>, upgrade = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const ws = upgrade
      ? { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64') }
      : {};
    const req = http.request({ host: '127.0.0.1', port, path, headers: { ...ws, ...headers } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the Host guard behind a reverse proxy on loopback', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ ALLOWED_HOSTS: 'tandem.example,Speech.Example' });
  });
  after(() => server.close());

  it('lets a proxied Host listed in ALLOWED_HOSTS through, for REST and the WebSocket upgrade', async () => {
    for (const host of ['tandem.example', 'tandem.example:443', 'speech.example']) {
      const rest = await proxied(server.port, '/api/sessions', { Host: host });
      assert.equal(rest.status, 200, `${host}: ${rest.body}`);
      assert.ok(Array.isArray(JSON.parse(rest.body).items));
      const ws = await proxied(server.port, '/ws', { Host: host, Origin: `https://${host}` }, true);
      assert.equal(ws.status, 101, `${host}: ${ws.body}`);
    }
  });

  it('refuses a Host not listed with 403 FORBIDDEN_HOST naming ALLOWED_HOSTS', async () => {
    for (const upgrade of [false, true]) {
      const r = await proxied(server.port, upgrade ? '/ws' : '/api/sessions', { Host: 'other.example' }, upgrade);
      assert.equal(r.status, 403);
      const problem = JSON.parse(r.body);
      assert.equal(problem.code, 'FORBIDDEN_HOST');
      assert.match(problem.detail, /"other\.example".*ALLOWED_HOSTS/);
    }
  });

  it('never lets X-Forwarded-Host stand in for Host, trusted proxy or not', async () => {
    const trusting = await startServer({ ALLOWED_HOSTS: 'tandem.example', TRUST_PROXY: 'loopback' });
    try {
      for (const s of [server, trusting]) {
        const spoofed = await proxied(s.port, '/api/sessions', { Host: 'evil.example', 'X-Forwarded-Host': 'tandem.example' });
        assert.equal(spoofed.status, 403);
        const ws = await proxied(s.port, '/ws', { Host: 'evil.example', 'X-Forwarded-Host': 'localhost' }, true);
        assert.equal(ws.status, 403);
        // ...nor keep a listed Host out.
        const listed = await proxied(s.port, '/api/sessions', { Host: 'tandem.example', 'X-Forwarded-Host': 'evil.example' });
        assert.equal(listed.status, 200);
      }
    } finally {
      await trusting.close();
    }
  });
});
