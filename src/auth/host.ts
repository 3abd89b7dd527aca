import type { IncomingMessage } from 'node:http';

/**
 * DNS-rebinding guard. While tandem is bound to loopback its API needs no token, so a web page
 * whose own name re-binds to 127.0.0.1 could otherwise reach it from a browser: such a request
 * names the attacker's host in `Host`. `allowed` is undefined when not on loopback (tokens guard
 * the API there), and then every Host passes.
 */
export function hostAllowed(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  if (!allowed) return true;
  const host = req.headers.host;
  if (!host) return false;
  // Strip the port: "[::1]:8000" → "::1", "localhost:8000" → "localhost".
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return allowed.includes(name.toLowerCase());
}
