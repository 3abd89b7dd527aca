import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forwardedHops, xForwardedForHops } from '../../src/net/forwarding-headers.js';

describe('forwarding headers', () => {
  it('reads the for= node of every Forwarded element, client first (RFC 7239 examples)', () => {
    assert.deepEqual(forwardedHops('for="_gazonk"'), [null]);
    assert.deepEqual(forwardedHops('For="[2001:db8:cafe::17]:4711"'), ['2001:db8:cafe::17']);
    assert.deepEqual(forwardedHops('for=192.0.2.60;proto=http;by=203.0.113.43'), ['192.0.2.60']);
    assert.deepEqual(forwardedHops('for=192.0.2.43, for=198.51.100.17'), ['192.0.2.43', '198.51.100.17']);
    assert.deepEqual(forwardedHops('for="192.0.2.43:47011", for=unknown, for="[::1]"'), ['192.0.2.43', null, '::1']);
  });

  it('takes several Forwarded header lines as one list, and skips empty elements', () => {
    assert.deepEqual(forwardedHops(['for=192.0.2.1', 'for=192.0.2.2;by=x']), ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(forwardedHops('for=192.0.2.1,, ,for=192.0.2.2,'), ['192.0.2.1', '192.0.2.2']);
  });

  it('counts an element without for= as a hop that names nobody', () => {
    assert.deepEqual(forwardedHops('proto=https;host=a.example, for=192.0.2.9'), [null, '192.0.2.9']);
  });

  it('refuses a malformed Forwarded header as a whole', () => {
    for (const bad of ['for="192.0.2.1', 'for', 'for=1.2.3.4 junk', '=x', 'fo r=1.2.3.4']) {
      assert.equal(forwardedHops(bad), undefined, bad);
    }
  });

  it('reads X-Forwarded-For entries with or without ports, IPv6 bare or bracketed', () => {
    assert.deepEqual(xForwardedForHops('203.0.113.7, 10.0.0.2'), ['203.0.113.7', '10.0.0.2']);
    assert.deepEqual(xForwardedForHops('203.0.113.7:5123,[2001:db8::5]:443, 2001:db8::6'), ['203.0.113.7', '2001:db8::5', '2001:db8::6']);
    assert.deepEqual(xForwardedForHops(['1.1.1.1', '2.2.2.2']), ['1.1.1.1', '2.2.2.2']);
    assert.deepEqual(xForwardedForHops('unknown, , _x'), [null, null, null]);
    assert.deepEqual(xForwardedForHops(undefined), []);
  });
});
