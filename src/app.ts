import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type WebSocket from 'ws';
import type { Config } from './config.js';
import { hostAllowed } from './auth/host.js';
import { refusals } from './errors.js';
import { createMetrics } from './metrics/index.js';
import { sendProblem } from './routes/problem.js';
import { PipelineCatalog } from './pipelines/catalog.js';
import { WorkerPool } from './pool/worker-pool.js';
import { SessionRegistry } from './sessions/registry.js';
import { recoverSpools } from './sessions/spool.js';
import { loadProtocol } from './ws/protocol.js';
import { mountWebSocket } from './ws/mount.js';
import { mountRoutes } from './routes/mount.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** Where the service's metrics go (default: a registry of its own; never prom-client's global one). */
  registry?: Registry;
}

/** RUNNING serves; CLOSING refuses new work while sessions stop; CLOSED has released everything. */
export type AppState = 'RUNNING' | 'CLOSING' | 'CLOSED';

export interface App {
  readonly server: http.Server;
  readonly sessions: SessionRegistry;
  readonly pool: WorkerPool;
  readonly catalog: PipelineCatalog;
  /** Every metric `GET /metrics` serves. */
  readonly metricsRegistry: Registry;
  readonly state: AppState;
  /** Starts listening; resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Refuses new sessions, ends every live one (clients get `stopped` with reason `shutdown`
   * and close 1001), closes the server and the pool. Idempotent; bounded by SHUTDOWN_TIMEOUT_MS.
   */
  close(): Promise<void>;
}

/** Builds the whole service from its parts. Nothing listens until `listen()`. */
export async function createApp({ config, logger, registry: metricsRegistry = new Registry() }: AppDeps): Promise<App> {
  const removed = await recoverSpools(config.dataDir);
  if (removed.length > 0) logger.warn({ count: removed.length }, 'removed spools left by an earlier crash');

  const catalog = await PipelineCatalog.load({
    pipelinesDir: config.pipelinesDir,
    fileRoot: config.fileRoot,
    defaultName: config.defaultPipeline,
    settings: { speech: config.speech },
  });
  for (const e of catalog.loadErrors) logger.error({ module: e.module, err: e.error }, 'pipeline failed to load');
  for (const f of catalog.ignoredFiles) logger.warn({ file: f.file, reason: f.reason }, 'file in the pipelines folder is not a pipeline');
  for (const p of catalog.list()) if (p.unavailable) logger.warn({ pipeline: p.name, reason: p.unavailable }, 'pipeline unavailable');

  let sessions: SessionRegistry | undefined;
  let sockets: Set<WebSocket> | undefined;
  const pool = new WorkerPool(
    config.pool,
    (event) => sessions?.route(event),
    (err) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'a pool thread died outside a task; it is replaced'),
  );
  const metrics = createMetrics(metricsRegistry, {
    pool,
    catalog,
    sessions: () => sessions?.list() ?? [],
    sockets: () => sockets ?? [],
  });
  sessions = new SessionRegistry({
    pool,
    catalog,
    logger,
    observer: metrics.sessionObserver,
    dataDir: config.dataDir,
    maxSessions: config.maxSessions,
    loopMaxThreads: config.pool.loopMaxThreads,
    consumerBatchMax: config.consumerBatchMax,
    stopGraceMs: config.stopGraceMs,
    spoolFsync: config.spoolFsync,
    retainEndedCount: config.sessionRetainCount,
    retainEndedMs: config.sessionRetainMs,
    flow: config.flow,
  });
  const registry = sessions;

  const app = express();
  app.disable('x-powered-by');
  // Before every route, /metrics included: on loopback, a request must name a host we answer to.
  app.use((req, res, next) => {
    if (hostAllowed(req, config.allowedHosts)) return next();
    const refusal = refusals.forbiddenHost(req.headers.host);
    sendProblem(req, res, refusal.code, refusal.message);
  });
  app.use(metrics.httpMiddleware);
  // First of all routes, so that auth added later never covers it: scrapers carry no credentials.
  app.get('/metrics', metrics.endpoint);
  const server = http.createServer(app);
  let state: AppState = 'RUNNING';
  const ws = mountWebSocket(app, server, config, {
    sessions: registry,
    protocol: loadProtocol(),
    logger,
    observer: metrics.connectionObserver,
    accepting: () => state === 'RUNNING',
  });
  sockets = ws.clients;

  mountRoutes(app, {
    sessions: registry,
    pool,
    catalog,
    tokens: config.tokens,
    logger,
    state: () => state,
    maxBodyBytes: config.maxRequestBodyBytes,
    readyProbeTimeoutMs: config.readyProbeTimeoutMs,
  });
  let closing: Promise<void> | null = null;

  async function shutdown(): Promise<void> {
    state = 'CLOSING';
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs, 'timeout').unref());
    const stopped = registry.close('shutdown');
    if ((await Promise.race([stopped, timeout])) === 'timeout') {
      logger.error('sessions did not all stop within SHUTDOWN_TIMEOUT_MS; terminating the pool');
    }
    ws.close();
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pool.close();
    state = 'CLOSED';
  }

  return {
    server,
    sessions: registry,
    pool,
    catalog,
    metricsRegistry,
    get state() {
      return state;
    },
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
