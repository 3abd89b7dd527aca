import { Router } from 'express';
import type { components } from '../generated/openapi.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { asyncRoute } from './async-route.js';

type Schemas = components['schemas'];

/** The parts of a Piscina 5 histogram summary we report (its values are in ms). */
interface HistogramSummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Every live instance's pool as it last reported it (a cluster's shared index). */
export type PoolInstances = () => Promise<NonNullable<Schemas['Pool']['instances']>>;

/**
 * GET /api/pool: threads, queue and timings of the step pool (threads of both pools); in a
 * cluster, with every instance's own pool as well.
 */
export function poolRoutes({ pool, instances }: { pool: WorkerPool; instances?: PoolInstances | undefined }): Router {
  const router = Router();
  router.get(
    '/api/pool',
    asyncRoute(async (_req, res) => {
      const body = poolView(pool);
      if (instances) body.instances = await instances();
      res.json(body);
    }),
  );
  return router;
}

/** The pool as GET /api/pool shows it (also the live view's pool panel). */
export function poolView(pool: WorkerPool): Schemas['Pool'] {
  const stats = pool.stats();
  const histogram = pool.histogram('step');
  return {
    threads: { total: stats.threads, busy: stats.busy, idle: stats.idle, heldByLoops: stats.loopThreads },
    queueDepth: stats.queueDepth,
    utilization: finite(stats.utilization) ?? 0,
    tasksCompleted: stats.completed,
    waitTimeMs: timing(histogram.waitTime),
    runTimeMs: timing(histogram.runTime),
    minThreads: stats.minThreads,
    maxThreads: stats.maxThreads,
    activeThreads: stats.activeThreads,
    heldThreads: stats.heldThreads,
    loopMaxThreads: stats.loopMaxThreads,
  };
}

/** Before the first task Node's histogram reports NaN means and absurd extremes: report nulls. */
function timing(h: HistogramSummary): Schemas['TimingSummary'] {
  const empty = !(h.max > 0) || !Number.isFinite(h.mean);
  if (empty) return { mean: null, p50: null, p90: null, p99: null, max: null };
  return { mean: finite(h.mean), p50: finite(h.p50), p90: finite(h.p90), p99: finite(h.p99), max: finite(h.max) };
}

function finite(n: number): number | null {
  return Number.isFinite(n) && n >= 0 ? n : null;
}
