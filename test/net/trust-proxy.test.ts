import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { canonicalAddress, isTrusted, parseTrustProxy } from '../../src/net/trust-proxy.js';

describe('TRUST_PROXY', () => {
  it('trusts single addresses and CIDR blocks of both families', () => {
    const trust = parseTrustProxy('10.0.0.0/8, 192.168.1.7 ,fd00::/8,2001:db8::1');
    for (const a of ['10.0.0.1', '10.255.255.255', '192.168.1.7', 'fd12::3', '2001:db8::1', '2001:db8:0:0:0:0:0:1']) {
      assert.ok(isTrusted(trust, a), a);
    }
    for (const a of ['11.0.0.1', '192.168.1.8', 'fe80::1', '2001:db8::2', 'not-an-ip', '']) {
      assert.ok(!isTrusted(trust, a), a);
    }
  });

  it('takes `loopback` for 127.0.0.0/8 and ::1, IPv4-mapped IPv6 included', () => {
    const trust = parseTrustProxy('loopback');
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) assert.ok(isTrusted(trust, a), a);
    for (const a of ['128.0.0.1', '::2', '::ffff:10.0.0.1']) assert.ok(!isTrusted(trust, a), a);
  });

  it('matches an IPv4-mapped block and address as the IPv4 they map', () => {
    const trust = parseTrustProxy('::ffff:10.1.0.0/112');
    assert.ok(isTrusted(trust, '10.1.2.3'));
    assert.ok(isTrusted(trust, '::ffff:10.1.200.3'));
    assert.ok(!isTrusted(trust, '10.2.0.1'));
  });

  it('writes one address one way, however a proxy spelled it', () => {
    assert.equal(canonicalAddress('::ffff:203.0.113.9'), '203.0.113.9');
    assert.equal(canonicalAddress('2001:DB8:0:0::1'), '2001:db8::1');
    assert.equal(canonicalAddress(' 203.0.113.9 '), '203.0.113.9');
    assert.equal(canonicalAddress('example.com'), undefined);
    assert.equal(canonicalAddress('fe80::1%eth0'), undefined);
  });

  it('is unset by default: no proxy is trusted', () => {
    assert.equal(loadConfig({}).trustProxy, undefined);
    assert.ok(Object.isFrozen(loadConfig({ TRUST_PROXY: 'loopback' }).trustProxy));
  });

  it('refuses a value that is not an address, a block or `loopback`, naming TRUST_PROXY and the entry', () => {
    for (const bad of ['10.0.0.0/33', 'proxy.internal', '10.0.0.1,nope', '::1/129', '300.1.1.1', ',', '10.0.0.0/8/8']) {
      assert.throws(
        () => loadConfig({ TRUST_PROXY: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.includes('TRUST_PROXY'),
        bad,
      );
    }
    assert.throws(() => loadConfig({ TRUST_PROXY: '10.0.0.1,nope' }), /"nope" is not an IPv4\/IPv6 address/);
  });
});
