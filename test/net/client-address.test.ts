import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { clientAddress } from '../../src/net/client-address.js';
import { parseTrustProxy } from '../../src/net/trust-proxy.js';

/** A request as clientAddress sees it: the socket's peer and the headers. */
function request(peer: string | undefined, headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

const trust = parseTrustProxy('10.0.0.0/8, loopback');

describe('client address', () => {
  it('is the socket peer when no proxy is trusted, whatever the headers say', () => {
    const req = request('198.51.100.4', { 'x-forwarded-for': '203.0.113.1', forwarded: 'for=203.0.113.1' });
    assert.equal(clientAddress(req, undefined), '198.51.100.4');
  });

  it('ignores the headers when the peer is not one of the trusted proxies', () => {
    assert.equal(clientAddress(request('198.51.100.4', { 'x-forwarded-for': '203.0.113.1' }), trust), '198.51.100.4');
  });

  it('takes the right-most untrusted hop behind trusted proxies', () => {
    // The client forged the first entry; the proxies 10.0.0.1 and 10.0.0.2 appended the rest.
    const req = request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.1, 10.0.0.1' });
    assert.equal(clientAddress(req, trust), '203.0.113.1');
    const rfc = request('127.0.0.1', { forwarded: 'for=6.6.6.6, for="[2001:db8::7]:5000", for=10.0.0.1' });
    assert.equal(clientAddress(rfc, trust), '2001:db8::7');
  });

  it('takes the left-most hop when every hop is trusted', () => {
    assert.equal(clientAddress(request('127.0.0.1', { 'x-forwarded-for': '10.0.0.9, 10.0.0.1' }), trust), '10.0.0.9');
  });

  it('stops at the nearest trusted hop when a hop names no address (obfuscated, unknown)', () => {
    assert.equal(clientAddress(request('127.0.0.1', { forwarded: 'for=203.0.113.1, for=_hidden' }), trust), '127.0.0.1');
    assert.equal(clientAddress(request('127.0.0.1', { forwarded: 'for=203.0.113.1, for="_x", for=10.0.0.3' }), trust), '10.0.0.3');
    assert.equal(clientAddress(request('127.0.0.1', { 'x-forwarded-for': 'unknown' }), trust), '127.0.0.1');
  });

  it('falls back to the socket peer on a malformed Forwarded header', () => {
    assert.equal(clientAddress(request('127.0.0.1', { forwarded: 'for="203.0.113.1' }), trust), '127.0.0.1');
  });

  it('believes both headers only when they name the same client', () => {
    const agree = request('127.0.0.1', { forwarded: 'for=203.0.113.1', 'x-forwarded-for': '203.0.113.1' });
    assert.equal(clientAddress(agree, trust), '203.0.113.1');
    // nginx appends to X-Forwarded-For and passes a client's own Forwarded through untouched.
    const forged = request('127.0.0.1', { forwarded: 'for=6.6.6.6', 'x-forwarded-for': '6.6.6.6, 203.0.113.1' });
    assert.equal(clientAddress(forged, trust), '127.0.0.1');
  });

  it('writes IPv4-mapped peers and hops as IPv4, and survives a socket that lost its peer', () => {
    assert.equal(clientAddress(request('::ffff:127.0.0.1', { 'x-forwarded-for': '::ffff:203.0.113.5' }), trust), '203.0.113.5');
    assert.equal(clientAddress(request('::ffff:198.51.100.1'), undefined), '198.51.100.1');
    assert.equal(clientAddress(request(undefined), trust), 'unknown');
  });
});
