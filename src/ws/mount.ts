import type http from 'node:http';
import type { Application } from 'express';
import expressWs from 'express-ws';
import type WebSocket from 'ws';
import type { Config } from '../config.js';
import type { TandemError } from '../errors.js';
import { Connection, type ConnectionDeps } from './connection.js';
import { Door } from './door.js';
import { startHeartbeat } from './heartbeat.js';
import { skipRepeatedEnds } from './repeated-ends.js';
import { upgradeRequired } from './upgrade-required.js';

/** The paths that speak the session protocol: `/ws`, and the seed's path so its clients work unchanged. */
export const WS_PATHS = ['/ws', '/live-transcription'] as const;

export interface WebSocketEndpoint {
  readonly clients: Set<WebSocket>;
  /** Stops the heartbeat and drops every socket still open. */
  close(): void;
}

/**
 * Attaches the WebSocket endpoints to `server`: door checks before any upgrade is accepted,
 * then one Connection per socket, and a heartbeat over all of them.
 */
export function mountWebSocket(
  app: Application,
  server: http.Server,
  config: Config,
  deps: ConnectionDeps & {
    refusal(): TandemError | null;
    /** A socket was accepted (it now counts against the open-file limit). */
    opened?(): void;
    /** A socket closed (it no longer counts against the open-file limit). */
    closed?(): void;
  },
): WebSocketEndpoint {
  const door = new Door({
    config,
    paths: WS_PATHS,
    refusal: deps.refusal,
    liveSessions: () => deps.sessions.admitted,
    sessionsFrom: (address) => deps.sessions.sessionsFrom(address),
    refused: (code) => deps.observer?.errorSent?.(code),
  });
  const instance = expressWs(app, server, {
    wsOptions: {
      maxPayload: config.maxMessageBytes,
      // Never compressed: a step thread writes results' frames into the socket itself (ws/socket-slots.ts).
      perMessageDeflate: false,
      verifyClient: door.verifyClient,
      handleProtocols: door.handleProtocols,
      clientTracking: true,
    },
  });
  const heartbeat = startHeartbeat(config.heartbeatIntervalMs);
  for (const path of WS_PATHS) {
    instance.app.ws(path, (ws, req) => {
      door.track(req, (fn) => ws.once('close', fn));
      deps.opened?.();
      if (deps.closed) ws.once('close', deps.closed);
      skipRepeatedEnds(ws);
      const connection = new Connection(ws, req, deps, {
        maxMessagesPerSecond: config.maxMessagesPerSecond,
        sendBufferHighBytes: config.sendBufferHighBytes,
      });
      heartbeat.watch(ws, () => connection.ping());
    });
  }
  // express-ws routes upgrades to `<path>/.websocket`: these see only plain HTTP.
  app.get([...WS_PATHS], upgradeRequired());
  const wss = instance.getWss();
  // ws re-emits the HTTP server's own errors (EADDRINUSE on listen) here, where an unheard
  // 'error' would crash the process; the caller of listen() gets them and reports them.
  wss.on('error', () => {});
  return {
    clients: wss.clients,
    close() {
      heartbeat.close();
      for (const ws of wss.clients) ws.terminate();
    },
  };
}
