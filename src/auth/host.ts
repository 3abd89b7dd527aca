import type { IncomingMessage } from 'node:http';

/**
 * DNS-rebinding guard. While tandem is bound to loopback its API needs no token, so a web page
 * whose own name re-binds to 127.0.0.1 could otherwise reach it from a browser: such a request
 * names the attacker's host in `Host`. `allowed` is undefined when not on loopback (tokens guard
 * the API there), and then every Host passes.
 *
 * Only `Host` counts. A reverse proxy on the same machine passes the client's Host on (or its own
 * upstream name): the operator lists that name in ALLOWED_HOSTS. `X-Forwarded-Host` is never
 * consulted, with or without TRUST_PROXY: to the browser a re-bound page is same-origin, so its
 * script may set X-Forwarded-Host (no forbidden header, no preflight) to `localhost` — believing
 * it would let exactly the request this guard exists to refuse through.
 */
export function hostAllowed(req: IncomingMessage, allowed: readonly string[] | undefined): boolean {
  if (!allowed) return true;
  const host = req.headers.host;
  if (!host) return false;
  // Strip the port: "[::1]:8000" → "::1", "localhost:8000" → "localhost".
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return allowed.includes(name.toLowerCase());
}
