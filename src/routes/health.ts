import { Router, type Request, type Response } from 'express';
import type { AppState } from '../app.js';
import type { components } from '../generated/openapi.js';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { sendProblem } from './problem.js';

type Schemas = components['schemas'];

export interface HealthDeps {
  state: () => AppState;
  catalog: PipelineCatalog;
  pool: WorkerPool;
  /** How long the pool may take to run a probe task, ms (READY_PROBE_TIMEOUT_MS). */
  readyProbeTimeoutMs: number;
}

/** GET /livez (the process answers) and GET /readyz (it can take new sessions). Never need a token. */
export function healthRoutes({ state, catalog, pool, readyProbeTimeoutMs }: HealthDeps): Router {
  const router = Router();
  router.get('/livez', (_req, res) => {
    const body: Schemas['Liveness'] = { status: 'ok' };
    res.json(body);
  });
  router.get('/readyz', (req, res, next) => {
    // A probe task that runs no user code: the pool must actually run work, not just hold threads.
    pool.canRunWork(readyProbeTimeoutMs).then((runs) => {
      const threads = pool.stats().threads;
      const checks: Schemas['ReadinessChecks'] = {
        state: state(),
        pipelines: { ok: catalog.loadErrors.length === 0, loadErrors: catalog.loadErrors.length },
        pool: { ok: runs, threads },
      };
      answer(req, res, checks);
    }, next);
  });
  return router;
}

function answer(req: Request, res: Response, checks: Schemas['ReadinessChecks']): void {
  const failing = [
    checks.state !== 'RUNNING' && `the service is ${checks.state}`,
    !checks.pipelines.ok && `${checks.pipelines.loadErrors} pipeline module(s) failed to load (see GET /api/pipelines)`,
    !checks.pool.ok && 'the worker pool did not run a probe task within READY_PROBE_TIMEOUT_MS',
  ].filter((x): x is string => typeof x === 'string');
  if (failing.length > 0) return sendProblem(req, res, 'NOT_READY', `not ready: ${failing.join('; ')}`, { checks });
  const body: Schemas['Readiness'] = { status: 'ready', checks };
  res.json(body);
}
