/**
 * Prometheus metrics of the whole service. Each file here defines one group of metrics on the
 * registry it is given and returns the hooks that feed them; this module wires them together.
 * README "Metrics" lists every metric.
 */
import type { RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type WebSocket from 'ws';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import type { Session, SessionObserver } from '../sessions/session.js';
import type { ConnectionObserver } from '../ws/connection.js';
import type { BatchObserver } from '../pool/step-batcher.js';
import type { HeldFilesBudget } from '../spool/held-files.js';
import { batchMetrics } from './batches.js';
import { clusterMetrics, type ClusterObserver } from './cluster.js';
import { metricsEndpoint } from './endpoint.js';
import { flowMetrics } from './flow.js';
import { httpMetrics } from './http.js';
import { poolMetrics } from './pool.js';
import { processMetrics } from './process.js';
import { sessionMetrics } from './sessions.js';
import { speechMetrics } from './speech.js';
import { spoolMetrics } from './spool.js';
import { webSocketMetrics } from './websocket.js';

export interface MetricsDeps {
  pool: WorkerPool;
  catalog: PipelineCatalog;
  /** Live sessions, read at scrape time (a function: the registry is built after the metrics). */
  sessions: () => Iterable<Session>;
  /** Open client sockets, read at scrape time. */
  sockets: () => Iterable<WebSocket>;
  /** The log descriptors held for sessions' steps. */
  heldFiles: HeldFilesBudget;
  /** This instance runs in a cluster on Redis (REDIS_URL set); default false. */
  clustered?: boolean;
  /** How often the event loop's lag is sampled, ms (METRICS_LOOP_DELAY_RESOLUTION_MS). */
  loopDelayResolutionMs: number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly sessionObserver: SessionObserver;
  readonly connectionObserver: ConnectionObserver;
  readonly batchObserver: BatchObserver;
  /** Fed by the cluster core (src/cluster/); its series exist, at rest, standalone too. */
  readonly clusterObserver: ClusterObserver;
  /** Times every HTTP request; mount before the routes. */
  readonly httpMiddleware: RequestHandler;
  /** Serves `GET /metrics`. */
  readonly endpoint: RequestHandler;
}

/** Registers every metric of the service on `registry` (never the global one). */
export function createMetrics(registry: Registry, deps: MetricsDeps): Metrics {
  processMetrics(registry, deps.loopDelayResolutionMs);
  speechMetrics(registry, deps);
  spoolMetrics(registry, deps);
  return {
    registry,
    sessionObserver: {
      ...poolMetrics(registry, deps),
      ...sessionMetrics(registry, deps),
      ...flowMetrics(registry, deps),
    },
    connectionObserver: webSocketMetrics(registry, deps),
    batchObserver: batchMetrics(registry),
    clusterObserver: clusterMetrics(registry, { clustered: deps.clustered }),
    httpMiddleware: httpMetrics(registry),
    endpoint: metricsEndpoint(registry),
  };
}
