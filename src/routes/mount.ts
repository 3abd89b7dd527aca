import type { Application } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Logger } from 'pino';
import type { AppState } from '../app.js';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { SessionRegistry } from '../sessions/registry.js';
import { bearerAuth, type Tokens } from './auth.js';
import { bodyGuard } from './body.js';
import { docsRoutes } from './docs.js';
import { healthRoutes } from './health.js';
import { pipelineRoutes } from './pipelines.js';
import { poolRoutes } from './pool.js';
import { problemHandler, sendProblem } from './problem.js';
import { sessionRoutes } from './sessions.js';
import type { SessionDirectory } from './session-directory.js';
import type { PoolInstances } from './pool.js';
import { spoolRoutes, type SpoolRoutesDeps } from './spools.js';
import { ASYNCAPI_FILE, loadOpenApi } from './spec.js';
import type { LiveHub } from '../web/live-hub.js';
import { liveRoutes } from '../web/live-route.js';
import { pageRoutes } from '../web/page.js';

export interface RouteDeps extends SpoolRoutesDeps {
  sessions: SessionRegistry;
  /** Where the session routes look: this instance's sessions, or the cluster's. */
  directory: SessionDirectory;
  /** This instance's sessions alone. */
  local: SessionDirectory;
  /** In a cluster: every instance's pool, for GET /api/pool. */
  instances?: PoolInstances;
  pool: WorkerPool;
  catalog: PipelineCatalog;
  tokens: Tokens;
  logger: Logger;
  state: () => AppState;
  /** How long GET /readyz waits for the pool to run a probe task, ms. */
  readyProbeTimeoutMs: number;
  /** Largest request body read, in bytes (MAX_REQUEST_BODY_BYTES). */
  maxBodyBytes: number;
  /** The live view's stream (GET /api/live). */
  live: LiveHub;
  /** Whether WebSocket clients must present CLIENT_TOKEN. */
  clientTokenRequired: boolean;
}

/** Only /api/* is validated (and guarded) by openapi.yaml at run time; probes and docs take no input. */
const API_PREFIX = '/api/';

/**
 * Mounts the REST control plane: the body guard (size and type, every path), probes, docs and
 * the live view's page (open), then /api/* behind the OpenAPI validator (request shape and bearer tokens, both from
 * openapi.yaml), then a problem+json 404 for anything else and the one error handler.
 */
export function mountRoutes(app: Application, deps: RouteDeps): void {
  const spec = loadOpenApi();
  app.use(bodyGuard(deps.maxBodyBytes));
  app.use(healthRoutes(deps));
  app.use(docsRoutes(spec, loadOpenApi(ASYNCAPI_FILE)));
  app.use(pageRoutes());
  app.use(
    OpenApiValidator.middleware({
      apiSpec: structuredClone(spec.document) as unknown as Parameters<typeof OpenApiValidator.middleware>[0]['apiSpec'],
      validateApiSpec: true,
      validateRequests: { allowUnknownQueryParameters: false },
      validateResponses: false,
      // Without ADMIN_TOKEN (loopback only, enforced by loadConfig) the API is open.
      validateSecurity: deps.tokens.admin === undefined ? false : { handlers: { bearerAuth: bearerAuth(deps.tokens) } },
      ignorePaths: (path: string) => !path.startsWith(API_PREFIX),
    }),
  );
  app.use(sessionRoutes(deps));
  app.use(spoolRoutes(deps));
  app.use(poolRoutes(deps));
  app.use(pipelineRoutes(deps));
  app.use(liveRoutes(deps));
  // Whatever no route took (outside /api too) is a problem document, never express's HTML page.
  app.use((req, res) => sendProblem(req, res, 'NOT_FOUND', `no resource at ${req.method} ${req.path}; see /docs`));
  app.use(problemHandler(deps.logger));
}
