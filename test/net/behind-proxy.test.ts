import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { api } from '../helpers/openapi.js';
import { eventually, startServer, type TestServer } from '../helpers/server.js';

/** A WebSocket client as a reverse proxy on this machine would pass it on: from 127.0.0.1, naming the client. */
function viaProxy(server: TestServer, forwardedFor: string): Promise<TestClient> {
  return TestClient.open(server.wsUrl(), { headers: { 'X-Forwarded-For': forwardedFor } });
}

async function inspectedAddress(server: TestServer, id: string): Promise<string> {
  const res = await api(server.httpUrl(''), 'GET', `/api/sessions/${id}`);
  assert.equal(res.status, 200);
  return res.body.clientAddress as string;
}

describe('client addresses behind a reverse proxy', () => {
  it('gives each client behind a trusted proxy its own MAX_SESSIONS_PER_CLIENT budget and address', async () => {
    const server = await startServer({ TRUST_PROXY: 'loopback', MAX_SESSIONS_PER_CLIENT: '1' });
    const clients: TestClient[] = [];
    try {
      const alice = await viaProxy(server, '203.0.113.10');
      clients.push(alice);
      const bob = await viaProxy(server, '6.6.6.6, 203.0.113.20');
      clients.push(bob);
      const aliceId = await alice.start({ options: { intervalMs: 100 } });
      const bobId = await bob.start({ options: { intervalMs: 100 } });
      assert.equal(await inspectedAddress(server, aliceId), '203.0.113.10');
      assert.equal(await inspectedAddress(server, bobId), '203.0.113.20');
      // Alice's second connection is over her budget; Bob's forged left-most entry is not his address.
      await assert.rejects(viaProxy(server, '203.0.113.10'), /503/);
      await assert.rejects(viaProxy(server, '203.0.113.99, 203.0.113.20'), /503/);
      const carol = await TestClient.open(server.wsUrl(), { headers: { Forwarded: 'for="[2001:db8::30]:5555"' } });
      clients.push(carol);
      assert.equal(await inspectedAddress(server, await carol.start({ options: { intervalMs: 100 } })), '2001:db8::30');
    } finally {
      for (const c of clients) c.terminate();
      await server.close();
    }
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY names the proxy: everyone is the proxy', async () => {
    for (const env of [{}, { TRUST_PROXY: '10.0.0.0/8' }] as Array<Record<string, string>>) {
      const server = await startServer({ ...env, MAX_SESSIONS_PER_CLIENT: '1' });
      const clients: TestClient[] = [];
      try {
        const first = await viaProxy(server, '203.0.113.10');
        clients.push(first);
        const id = await first.start({ options: { intervalMs: 100 } });
        assert.equal(await inspectedAddress(server, id), '127.0.0.1');
        await assert.rejects(viaProxy(server, '203.0.113.20'), /503/, JSON.stringify(env));
      } finally {
        for (const c of clients) c.terminate();
        await server.close();
      }
    }
  });

  it('counts a RESUME relayed by another instance against its client on the owner, when the owner trusts that instance', async () => {
    // Each instance trusts loopback: here the balancer and the other instance are both on 127.0.0.1.
    const limits = { TRUST_PROXY: 'loopback', MAX_SESSIONS_PER_CLIENT: '2', RESUME_GRACE_MS: '30000' };
    const owner = await startServer(limits);
    const other = await startServer(limits, {
      relay: { connectTimeoutMs: 5000, owners: { ownerOf: async (id) => (owner.app.sessions.get(id) ? owner.httpUrl('') : null) } },
    });
    const clients: TestClient[] = [];
    try {
      const first = await viaProxy(owner, '203.0.113.7');
      clients.push(first);
      const id = await first.start({ options: { intervalMs: 50 } });
      const secret = first.messages.find((m) => m.type === 'started')!.resume!;
      first.terminate();
      await eventually(() => owner.app.sessions.get(id)?.attached === false, 'the owner noticed the drop');
      const again = await viaProxy(other, '203.0.113.7');
      clients.push(again);
      again.send({ command: 'RESUME', session: id, resume: secret, after: 0 });
      await again.waitFor((m) => m.type === 'resumed', 'resumed through the other instance');
      assert.equal(owner.app.sessions.get(id)?.attached, true);
      // On the owner 203.0.113.7 now holds one session and one (relayed) connection: one more
      // connection fits its budget of 2, a second does not. Had the relay counted as the other
      // instance's address, both would.
      clients.push(await viaProxy(owner, '203.0.113.7'));
      await assert.rejects(viaProxy(owner, '203.0.113.7'), /503/);
      assert.equal(await inspectedAddress(owner, id), '203.0.113.7');
    } finally {
      for (const c of clients) c.terminate();
      await other.close();
      await owner.close();
    }
  });
});
