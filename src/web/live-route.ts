import { Router } from 'express';
import { tokenRole, type Tokens } from '../routes/auth.js';
import { sendProblem } from '../routes/problem.js';
import { TandemError } from '../errors.js';
import type { LiveHub } from './live-hub.js';

/** Idle time before TCP keepalive probes start on a viewer's connection, ms. */
const KEEPALIVE_MS = 30_000;

export interface LiveRouteDeps {
  live: LiveHub;
  tokens: Tokens;
  /** Whether WebSocket clients must present CLIENT_TOKEN (the try-it panel then asks for it). */
  clientTokenRequired: boolean;
}

/**
 * GET /api/live: the live view's event stream. It sits behind the OpenAPI validator like every
 * /api/* operation, so a request without a valid token never gets here; the role is read again
 * only to tell the page what it may show (the stop button).
 */
export function liveRoutes({ live, tokens, clientTokenRequired }: LiveRouteDeps): Router {
  const router = Router();
  const roleOf = tokenRole(tokens);
  router.get('/api/live', (req, res) => {
    const role = roleOf(req.headers.authorization) ?? 'read';
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // Proxies that buffer responses (nginx) would hold events back.
      'X-Accel-Buffering': 'no',
    });
    try {
      live.subscribe(res, { role, canStop: role === 'admin', clientTokenRequired });
    } catch (err) {
      if (!(err instanceof TandemError)) throw err;
      if (err.status === 503) res.set('Retry-After', '5');
      sendProblem(req, res, err.code, err.message);
      return;
    }
    // Node's default socket timeouts must not cut a stream that is quiet by design; TCP keepalive
    // finds a viewer that vanished without a FIN, so it does not hold a LIVE_MAX_VIEWERS slot.
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, KEEPALIVE_MS);
  });
  return router;
}
