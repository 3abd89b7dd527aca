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
import { Cluster } from './cluster/cluster.js';
import { localDirectory } from './routes/session-directory.js';
import { poolView } from './routes/pool.js';
import { StepBatcher } from './pool/step-batcher.js';
import type { ResidentSteps } from './pool/residents.js';
import { FlagsSlab } from './pool/flags.js';
import { QuietReader, quietSlab } from './pool/quiet-steps.js';
import { ClaimSlab } from './pool/claims.js';
import { HeldFilesBudget } from './spool/held-files.js';
import { SpoolRemover } from './sessions/spool-remover.js';
import { TimerWheel } from './sessions/timer-wheel.js';
import { KeptSpools } from './sessions/kept-spools.js';
import { recoverSpools } from './sessions/spool.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { serverPathRedactor } from './ws/redact.js';
import { loadProtocol } from './ws/protocol.js';
import { mountWebSocket } from './ws/mount.js';
import { SocketSlots } from './ws/socket-slots.js';
import type { RelayDeps } from './ws/connection.js';
import { mountRoutes } from './routes/mount.js';
import { LiveHub } from './web/live-hub.js';
import { liveSnapshot } from './web/live-snapshot.js';
import { ThroughputHistory } from './web/throughput.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** Where the service's metrics go (default: a registry of its own; never prom-client's global one). */
  registry?: Registry;
  /** With several instances: where sessions run, so that a RESUME for another instance's session is relayed there. */
  relay?: Omit<RelayDeps, 'clientToken'>;
}

/**
 * STARTING has bound its port and is taking DATA_DIR (lock, then crash recovery): no session yet;
 * RUNNING serves; CLOSING refuses new work while sessions stop; CLOSED has released everything.
 */
export type AppState = 'STARTING' | 'RUNNING' | 'CLOSING' | 'CLOSED';

export interface App {
  readonly server: http.Server;
  readonly sessions: SessionRegistry;
  readonly pool: WorkerPool;
  /** Step producers kept by step threads (STEP_RESIDENTS); null when off. */
  readonly residents: ResidentSteps | null;
  readonly catalog: PipelineCatalog;
  /** Every metric `GET /metrics` serves. */
  readonly metricsRegistry: Registry;
  readonly state: AppState;
  /**
   * Binds the port, then takes DATA_DIR (an exclusive lock, then removal of the spools a crash
   * left), then takes sessions; resolves with the bound address. The port comes first so that a
   * second instance on the same port fails there without touching the data.
   * @throws DataDirLockedError when another live instance holds DATA_DIR (close the app then).
   */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Refuses new sessions, ends every live one (clients get `stopped` with reason `shutdown`
   * and close 1001), closes the server and the pool. Idempotent; bounded by SHUTDOWN_TIMEOUT_MS.
   */
  close(): Promise<void>;
}

/** Builds the whole service from its parts. Nothing listens, and DATA_DIR is not touched, until `listen()`. */
export async function createApp({ config, logger, registry: metricsRegistry = new Registry(), relay }: AppDeps): Promise<App> {
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
  // A flags slot for every session that can be admitted or still ending, and a claim slot for
  // every step task that can be in flight (each holds at least one of a session's two sides).
  const flags = new FlagsSlab(2 * config.maxSessions + 16);
  const claims = new ClaimSlab(2 * flags.capacity);
  // The clients' sockets step threads may write results into (STEP_SENDS).
  const socketSlots = config.stepSends ? new SocketSlots(config.stepSends) : null;
  // What residents' quiet steps publish, a slot beside each session's flags (pool/quiet-steps.ts).
  const quiet = quietSlab(flags.capacity, config.quiet);
  const pool = new WorkerPool(
    config.pool,
    { flagsSlab: flags.buffer, claimSlab: claims.buffer, batchAnswerUs: config.batch.answerUs, stepTickMs: config.stepTimer.tickMs, socketSlots: socketSlots?.buffers ?? null, residentAnswerMs: config.residentAnswerMs, residentAnswerMax: config.residentAnswerMax, residentGrouping: config.residentGrouping, quietSlab: quiet, lendConsumer: config.lendConsumer },
    (event) => sessions?.route(event),
    (err) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'a pool thread died outside a task; it is replaced'),
  );
  // Held log files leave room under the open-file limit for every open socket (spool/held-files.ts).
  const heldFiles = new HeldFilesBudget(config.heldFiles, () => sockets?.size ?? 0);
  const metrics = createMetrics(metricsRegistry, {
    pool,
    catalog,
    sessions: () => sessions?.list() ?? [],
    sockets: () => sockets ?? [],
    heldFiles,
    clustered: config.cluster !== undefined,
    loopDelayResolutionMs: config.loopDelayResolutionMs,
  });
  const steps = new StepBatcher(pool, config.batch, { flags: flags.buffer, claims }, metrics.batchObserver);
  const residents = config.residents ? pool.residents(flags.buffer, config.residents, metrics.batchObserver, config.quiet.stateBytes > 0 ? new QuietReader(quiet) : null) : null;
  const timers = new TimerWheel(config.stepTimer);
  const spools = new SpoolRemover(pool, config.batch, config.spoolRemoval);
  // Only with REDIS_URL: alone, nothing of src/cluster exists.
  const cluster = config.cluster
    ? new Cluster({
        config: config.cluster,
        logger,
        maxSessions: config.maxSessions,
        maxSessionsPerClient: config.maxSessionsPerClient,
        stopGraceMs: config.stopGraceMs,
        retainCount: config.sessionRetainCount,
        retainMs: config.sessionRetainMs,
        adminToken: config.tokens.admin,
        clientToken: config.clientToken,
        sendBufferHighBytes: config.sendBufferHighBytes,
        poolView: () => poolView(pool),
        observer: metrics.clusterObserver,
      })
    : null;
  sessions = new SessionRegistry({
    pool,
    steps,
    residents,
    timers,
    flags,
    heldFiles,
    spools,
    catalog,
    logger,
    observer: metrics.sessionObserver,
    dataDir: config.dataDir,
    maxSessions: config.maxSessions,
    loopMaxThreads: config.pool.loopMaxThreads,
    consumerBatchMax: config.consumerBatchMax,
    stopGraceMs: config.stopGraceMs,
    log: config.log,
    burst: config.burst,
    retainEndedCount: config.sessionRetainCount,
    retainEndedMs: config.sessionRetainMs,
    flow: config.flow,
    keepAllowed: config.keptSpools.allowed,
    keptSpoolEnded: (id) => keptSpools.sessionEnded(id),
    ...(cluster ? { ledger: cluster } : {}),
  });
  const registry = sessions;
  const local = localDirectory(registry);
  const keptSpools = new KeptSpools({
    dataDir: config.dataDir,
    maxBytes: config.keptSpools.maxBytes,
    maxAgeMs: config.keptSpools.maxAgeMs,
    sweepIntervalMs: config.keptSpools.sweepIntervalMs,
    live: (id) => {
      const session = registry.get(id);
      return session ? { keep: session.keep } : null;
    },
    logger,
  });
  let dataLock: DataDirLock | null = null;
  let starting: Promise<void> | null = null;

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
  let state: AppState = 'STARTING';
  const ws = mountWebSocket(app, server, config, {
    sessions: registry,
    protocol: loadProtocol(),
    logger,
    observer: metrics.connectionObserver,
    redact: serverPathRedactor(config.dataDir),
    relay: relay ? { ...relay, clientToken: config.clientToken } : cluster?.relay(config.clientToken),
    trustProxy: config.trustProxy,
    ...(socketSlots ? { socketSlots } : {}),
    refusal: () => (state === 'RUNNING' ? null : state === 'STARTING' ? refusals.starting() : refusals.shuttingDown()),
    opened: () => heldFiles.makeRoom(),
    closed: () => heldFiles.offerRoom(),
  });
  sockets = ws.clients;

  const throughput = new ThroughputHistory(metricsRegistry, pool, config.live.historySeconds);
  throughput.start();
  const live = new LiveHub({
    limits: config.live,
    logger,
    snapshot: () => liveSnapshot(registry, pool, throughput.latest(), config.live.maxSessions),
    history: () => throughput.history(),
  });

  mountRoutes(app, {
    sessions: registry,
    local,
    directory: cluster?.directory ?? local,
    ...(cluster ? { instances: () => cluster.instances() } : {}),
    pool,
    catalog,
    tokens: config.tokens,
    logger,
    state: () => state,
    maxBodyBytes: config.maxRequestBodyBytes,
    readyProbeTimeoutMs: config.readyProbeTimeoutMs,
    live,
    clientTokenRequired: config.clientToken !== undefined,
    keptSpools,
    keptSpoolLimits: config.keptSpools,
  });
  let closing: Promise<void> | null = null;

  async function shutdown(): Promise<void> {
    state = 'CLOSING';
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs, 'timeout').unref());
    // Ended sessions' folders go at once: a shutdown has no storm to make room for.
    spools.hurry();
    const stopped = registry.close('shutdown');
    if ((await Promise.race([stopped, timeout])) === 'timeout') {
      logger.error('sessions did not all stop within SHUTDOWN_TIMEOUT_MS; terminating the pool');
    }
    await cluster?.close();
    live.close();
    throughput.close();
    ws.close();
    heldFiles.close();
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    timers.close();
    steps.close();
    residents?.close();
    await pool.close();
    await keptSpools.close();
    // A start-up still taking the lock finishes first, so the lock it takes is released here.
    await starting?.catch(() => {});
    await dataLock?.release();
    state = 'CLOSED';
  }

  /** Takes DATA_DIR for this instance: the lock first, then what a crash left. */
  async function openData(): Promise<void> {
    dataLock = await lockDataDir(config.dataDir);
    if (state !== 'STARTING') return; // closed meanwhile: shutdown() releases the lock
    const { removed, repaired } = await recoverSpools(config.dataDir);
    if (removed.length > 0) logger.warn({ count: removed.length }, 'removed spools left by an earlier crash');
    for (const cut of repaired) logger.warn(cut, 'cut a kept spool segment at its first torn record');
    await keptSpools.start();
  }

  return {
    server,
    sessions: registry,
    pool,
    residents,
    catalog,
    metricsRegistry,
    get state() {
      return state;
    },
    async listen(port = config.port, host = config.host) {
      const address = await new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
      starting = openData();
      await starting;
      // Joins once its sessions can run: the others may send it stops from then on.
      if (cluster && state === 'STARTING') await cluster.start(registry, local, `http://${urlHost(host)}:${address.port}`);
      // A close() during start-up wins: it stays CLOSING.
      if (state === 'STARTING') state = 'RUNNING';
      return address;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** A host as it goes into a URL (an IPv6 address in brackets). */
function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
