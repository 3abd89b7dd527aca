import type { Request, RequestHandler, Response } from 'express';
import { sendProblem } from '../routes/problem.js';

/**
 * A plain HTTP request to a WebSocket path (a browser tab, curl) gets 426 Upgrade Required and
 * how to connect, not "no resource": the path exists, it just speaks another protocol.
 */
export function upgradeRequired(): RequestHandler {
  return (req: Request, res: Response) => {
    const scheme = req.protocol === 'https' ? 'wss' : 'ws';
    const url = `${scheme}://${req.headers.host ?? '127.0.0.1:8000'}${req.path}`;
    res.set('Upgrade', 'websocket');
    res.set('Connection', 'Upgrade');
    sendProblem(
      req,
      res,
      'UPGRADE_REQUIRED',
      `${req.path} speaks WebSocket: open ${url} (e.g. npx wscat -c ${url}) and send {"command":"START"}; the protocol is described at /asyncapi.yaml`,
    );
  };
}
