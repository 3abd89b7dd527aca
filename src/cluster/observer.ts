/**
 * What the cluster reports to metrics. The real one is src/metrics/cluster.ts (tandem_cluster_*);
 * until it is wired, `NO_CLUSTER_METRICS` keeps the cluster code free of `if (observer)`.
 */
export type ClusterOp = 'stop' | 'inspect' | 'relay' | 'admit' | 'index';

export interface ClusterObserver {
  redisUp(up: boolean): void;
  call(op: ClusterOp, seconds: number, outcome: 'ok' | 'timeout' | 'error'): void;
  instances(count: number): void;
  instanceLost(): void;
}

export const NO_CLUSTER_METRICS: ClusterObserver = {
  redisUp: () => {},
  call: () => {},
  instances: () => {},
  instanceLost: () => {},
};
