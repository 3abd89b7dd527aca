import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, METRIC_PREFIX } from './buckets.js';

/** Calls one instance makes to another (or to Redis on behalf of one): stop, inspect, relay a RESUME, admit a START, read an index. */
export type ClusterOp = 'stop' | 'inspect' | 'relay' | 'admit' | 'index';

const OPS: readonly ClusterOp[] = ['stop', 'inspect', 'relay', 'admit', 'index'];
const OUTCOMES = ['ok', 'timeout', 'error'] as const;

/** What the cluster core (src/cluster/) reports; README "Metrics and dashboards" lists the metrics. */
export interface ClusterObserver {
  /** Redis answers (true) or this instance lost its connection (false). */
  redisUp(up: boolean): void;
  /** A cross-instance call ended, after `seconds`. */
  call(op: ClusterOp, seconds: number, outcome: 'ok' | 'timeout' | 'error'): void;
  /** Live instances this one sees, itself included. */
  instances(count: number): void;
  /** This instance found another one's lease expired and declared it lost. */
  instanceLost(): void;
}

export interface ClusterMetricsOptions {
  /** This instance runs in a cluster (REDIS_URL is set). Any report from the cluster core also says so. */
  clustered?: boolean;
}

/**
 * Redis health, cross-instance calls and the instances seen.
 *
 * Every series exists from the first scrape, standalone too, so that dashboards and alerts never
 * query an absent series: `tandem_cluster_enabled` (0 standalone) tells a standalone instance's
 * `redis_up` 0 from a lost Redis; `instances` is 1 (itself) until the cluster reports; every op
 * and outcome of the call histogram and timeout counter is zeroed, so `increase()` sees the first
 * call and the first lost instance (a series born at 1 would show no increase).
 */
export function clusterMetrics(registry: Registry, options: ClusterMetricsOptions = {}): ClusterObserver {
  const gauge = (name: string, help: string, initial: number) => {
    const g = new Gauge({ name: METRIC_PREFIX + name, help, registers: [registry] });
    g.set(initial);
    return g;
  };
  const enabled = gauge('cluster_enabled', 'Whether this instance runs in a cluster on Redis (REDIS_URL set): 1, or 0 standalone.', options.clustered ? 1 : 0);
  const redisUp = gauge('cluster_redis_up', 'Whether Redis answers this instance: 1 up, 0 down or unreachable (always 0 standalone: see tandem_cluster_enabled).', 0);
  const instances = gauge('cluster_instances', 'Live instances this one sees, itself included (1 standalone).', 1);
  const lost = new Counter({
    name: METRIC_PREFIX + 'cluster_instances_lost_total',
    help: 'Other instances this one declared lost (lease expired); their sessions ended instance_lost.',
    registers: [registry],
  });
  const duration = new Histogram({
    name: METRIC_PREFIX + 'cluster_call_duration_seconds',
    help: 'Time of a cross-instance call (stop, inspect, relay, admit, index), by op and outcome (ok, timeout, error).',
    labelNames: ['op', 'outcome'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const timeouts = new Counter({
    name: METRIC_PREFIX + 'cluster_call_timeouts_total',
    help: 'Cross-instance calls that got no answer within CLUSTER_CALL_TIMEOUT_MS (or REDIS_COMMAND_TIMEOUT_MS), by op.',
    labelNames: ['op'] as const,
    registers: [registry],
  });
  lost.inc(0);
  for (const op of OPS) {
    timeouts.inc({ op }, 0);
    for (const outcome of OUTCOMES) duration.zero({ op, outcome });
  }

  return {
    redisUp(up) {
      enabled.set(1);
      redisUp.set(up ? 1 : 0);
    },
    call(op, seconds, outcome) {
      enabled.set(1);
      duration.observe({ op, outcome }, Math.max(0, seconds));
      if (outcome === 'timeout') timeouts.inc({ op });
    },
    instances(count) {
      enabled.set(1);
      instances.set(count);
    },
    instanceLost() {
      enabled.set(1);
      lost.inc();
    },
  };
}
