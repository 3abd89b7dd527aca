import type { IncomingMessage } from 'node:http';
import type { Config } from '../config.js';
import { problemBody, refusals, tandemError, type TandemError } from '../errors.js';
import { bearerToken, tokenMatches } from '../auth/token.js';
import { hostAllowed } from '../auth/host.js';
import { clientAddress } from '../net/client-address.js';

/** Subprotocol the server selects; browsers offer it together with `bearer.<token>`. */
export const PROTOCOL_NAME = 'tandem';
const BEARER_PROTOCOL = /^bearer\.(.+)$/;

export interface DoorDeps {
  config: Config;
  /** WebSocket paths that speak the protocol. */
  paths: readonly string[];
  /** Why the service takes no new sessions right now (starting, shutting down), or null when it does. */
  refusal(): TandemError | null;
  liveSessions(): number;
  /** Live sessions (detached ones included) started from an address. */
  sessionsFrom(address: string): number;
  /** Told of every refused upgrade, by its code (metrics). */
  refused?(code: TandemError['code']): void;
}

type VerifyCallback = (ok: boolean, code?: number, message?: string, headers?: Record<string, string>) => void;

/**
 * Every check made before a WebSocket upgrade is accepted: path, Origin, token, capacity.
 * A refused upgrade gets an HTTP status and a problem+json body, never an accepted-then-dropped
 * socket. Also counts open connections per client address.
 */
export class Door {
  readonly #deps: DoorDeps;
  readonly #perClient = new Map<string, number>();

  constructor(deps: DoorDeps) {
    this.#deps = deps;
  }

  /** The `verifyClient` hook for ws. */
  verifyClient = (info: { origin: string; req: IncomingMessage }, done: VerifyCallback): void => {
    const refusal = this.#check(info.req, info.origin);
    if (!refusal) return done(true);
    this.#deps.refused?.(refusal.code);
    const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
    if (refusal.status === 503) headers['Retry-After'] = '5';
    if (refusal.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="tandem"';
    done(false, refusal.status, JSON.stringify(problemBody(refusal.code, refusal.message, pathOf(info.req))), headers);
  };

  /** The `handleProtocols` hook: select `tandem` when offered (never echo a token back). */
  handleProtocols = (protocols: string[]): string | false => {
    if (protocols.includes(PROTOCOL_NAME)) return PROTOCOL_NAME;
    const other = protocols.find((p) => !BEARER_PROTOCOL.test(p));
    return other ?? false;
  };

  #check(req: IncomingMessage, origin: string | undefined): TandemError | null {
    const { config } = this.#deps;
    const path = pathOf(req);
    if (!this.#deps.paths.includes(path)) {
      return tandemError('NOT_FOUND', `no WebSocket endpoint at ${path}; use ${this.#deps.paths.join(' or ')}`);
    }
    if (!hostAllowed(req, config.allowedHosts)) {
      return refusals.forbiddenHost(req.headers.host);
    }
    if (origin && !this.#originAllowed(origin, req)) {
      return tandemError('FORBIDDEN_ORIGIN', `origin ${origin} may not open a WebSocket here (ALLOWED_ORIGINS)`);
    }
    if (config.clientToken && !tokenMatches(presentedToken(req), config.clientToken)) {
      return tandemError('UNAUTHORIZED', 'a client token is required: send Authorization: Bearer <token>, or the subprotocol bearer.<token>');
    }
    const refusal = this.#deps.refusal();
    if (refusal) return refusal;
    if (this.#deps.liveSessions() >= config.maxSessions) {
      return refusals.tooManySessions(config.maxSessions);
    }
    const limit = config.maxSessionsPerClient;
    const ip = clientAddress(req, config.trustProxy);
    // Sessions waiting for RESUME count too: dropping connections must not get around the limit.
    if (limit > 0 && Math.max(this.#perClient.get(ip) ?? 0, this.#deps.sessionsFrom(ip)) >= limit) {
      return tandemError('TOO_MANY_CLIENT_SESSIONS', `this address already has ${limit} connections or sessions (MAX_SESSIONS_PER_CLIENT); retry later`);
    }
    return null;
  }

  #originAllowed(origin: string, req: IncomingMessage): boolean {
    const allowed = this.#deps.config.allowedOrigins;
    if (allowed) return allowed.includes(origin);
    // Default: the service's own origin only.
    const host = req.headers.host;
    return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
  }

  /** Counts a connection against its address until it closes. */
  track(req: IncomingMessage, onClose: (fn: () => void) => void): void {
    const ip = clientAddress(req, this.#deps.config.trustProxy);
    this.#perClient.set(ip, (this.#perClient.get(ip) ?? 0) + 1);
    onClose(() => {
      const n = (this.#perClient.get(ip) ?? 1) - 1;
      if (n <= 0) this.#perClient.delete(ip);
      else this.#perClient.set(ip, n);
    });
  }
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0]!;
}

function presentedToken(req: IncomingMessage): string | undefined {
  const fromHeader = bearerToken(req.headers.authorization);
  if (fromHeader) return fromHeader;
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim());
  for (const p of offered) {
    const m = BEARER_PROTOCOL.exec(p);
    if (m) return m[1];
  }
  return undefined;
}
