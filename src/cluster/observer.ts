/**
 * What the cluster reports to metrics: the interface is src/metrics/cluster.ts's (tandem_cluster_*).
 * `NO_CLUSTER_METRICS` is for a cluster built without metrics (tests of its parts), so the cluster
 * code needs no `if (observer)`.
 */
import type { ClusterObserver } from '../metrics/cluster.js';

export type { ClusterObserver, ClusterOp } from '../metrics/cluster.js';

export const NO_CLUSTER_METRICS: ClusterObserver = {
  redisUp: () => {},
  call: () => {},
  instances: () => {},
  instanceLost: () => {},
};
