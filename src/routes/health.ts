import { Router } from 'express';
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
}

/** GET /livez (the process answers) and GET /readyz (it can take new sessions). Never need a token. */
export function healthRoutes({ state, catalog, pool }: HealthDeps): Router {
  const router = Router();
  router.get('/livez', (_req, res) => {
    const body: Schemas['Liveness'] = { status: 'ok' };
    res.json(body);
  });
  router.get('/readyz', (req, res) => {
    const threads = pool.stats().threads;
    const checks: Schemas['ReadinessChecks'] = {
      state: state(),
      pipelines: { ok: catalog.loadErrors.length === 0, loadErrors: catalog.loadErrors.length },
      // The step pool keeps POOL_MIN_THREADS (≥ 1) alive; none means threads cannot start or the pool is closed.
      pool: { ok: threads > 0, threads },
    };
    const failing = [
      checks.state !== 'RUNNING' && `the service is ${checks.state}`,
      !checks.pipelines.ok && `${checks.pipelines.loadErrors} pipeline module(s) failed to load (see GET /api/pipelines)`,
      !checks.pool.ok && 'the worker pool has no thread',
    ].filter((x): x is string => typeof x === 'string');
    if (failing.length > 0) return sendProblem(req, res, 'NOT_READY', `not ready: ${failing.join('; ')}`, { checks });
    const body: Schemas['Readiness'] = { status: 'ready', checks };
    res.json(body);
  });
  return router;
}
