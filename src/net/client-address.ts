import type { IncomingMessage } from 'node:http';
import { forwardedHops, xForwardedForHops, type Hop } from './forwarding-headers.js';
import { canonicalAddress, isTrusted, type TrustProxy } from './trust-proxy.js';

/**
 * The address of the client behind a request: what MAX_SESSIONS_PER_CLIENT counts and what
 * inspect shows.
 *
 * Forwarding headers are believed only as far as trusted proxies (TRUST_PROXY) vouch for them:
 * unless the socket's peer is a trusted proxy the headers are ignored, since anyone can send them.
 * Otherwise the hops are walked from the right (the entry the nearest proxy appended), each trusted
 * hop handing over to the one before it; the first untrusted hop is the client. A hop that names
 * no address (`for=unknown`, an obfuscated `for=_id`, garbage) ends the walk at the trusted hop
 * after it: the proxy's own address is the best we know, and what lies left of it is unverified.
 *
 * With both `Forwarded` and `X-Forwarded-For` present, they must name the same client. A proxy
 * usually writes one of them and passes the other through as the client sent it (nginx, Envoy,
 * Traefik write X-Forwarded-For; HAProxy can write either), so when they disagree we cannot tell
 * which one a proxy wrote and take the socket's address: a client can then only share its proxy's
 * budget, never borrow another's.
 *
 * @returns a canonical IP address (IPv4-mapped IPv6 as IPv4), or `unknown` when the socket has
 * already lost its peer.
 */
export function clientAddress(req: IncomingMessage, trust: TrustProxy | undefined): string {
  const peer = req.socket.remoteAddress;
  if (peer === undefined) return 'unknown';
  const socketAddress = canonicalAddress(peer) ?? peer;
  if (!trust || !isTrusted(trust, socketAddress)) return socketAddress;
  const forwarded = req.headers.forwarded;
  const xff = req.headers['x-forwarded-for'];
  if (forwarded === undefined && xff === undefined) return socketAddress;
  const byForwarded = forwarded === undefined ? undefined : walk(forwardedHops(forwarded), socketAddress, trust);
  const byXff = xff === undefined ? undefined : walk(xForwardedForHops(xff), socketAddress, trust);
  if (byForwarded === undefined) return byXff!;
  if (byXff === undefined) return byForwarded;
  return byForwarded === byXff ? byForwarded : socketAddress;
}

/** Right to left from the socket's peer; `hops` undefined (a malformed header) vouches for nothing. */
function walk(hops: Hop[] | undefined, socketAddress: string, trust: TrustProxy): string {
  let current = socketAddress;
  if (!hops) return current;
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!isTrusted(trust, current)) return current;
    const hop = hops[i];
    const address = hop == null ? undefined : canonicalAddress(hop);
    if (address === undefined) return current;
    current = address;
  }
  return current;
}
