import type { Application } from 'express';
import type { Instance as ExpressWsInstance } from 'express-ws';
import { Connection, type ConnectionDeps } from './connection.js';

/** The paths that speak the session protocol: `/ws`, and the seed's path so its clients work unchanged. */
export const WS_PATHS = ['/ws', '/live-transcription'] as const;

export function mountWebSocket(app: Application & ExpressWsInstance['app'], deps: ConnectionDeps): void {
  for (const path of WS_PATHS) {
    app.ws(path, (ws, req) => {
      new Connection(ws, req, deps);
    });
  }
}
