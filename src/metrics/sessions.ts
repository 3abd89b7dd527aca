import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PipelineCatalog } from '../pipelines/catalog.js';
import type { EndReason, Session, SessionObserver, SessionState } from '../sessions/session.js';
import { LATENCY_BUCKETS_SECONDS, METRIC_PREFIX } from './buckets.js';

const END_REASONS: readonly EndReason[] = ['client', 'admin', 'disconnect', 'failed', 'shutdown', 'completed', 'instance_lost'];
/** States a live session can be in; stopped and failed sessions leave the registry at once. */
const LIVE_STATES: readonly SessionState[] = ['starting', 'running', 'stopping'];

/** Every live state at 0: each pipeline's series exist before any session is in them. */
function zeroByState(): Record<string, number> {
  return Object.fromEntries(LIVE_STATES.map((state) => [state, 0]));
}

export interface SessionMetricsDeps {
  catalog: PipelineCatalog;
  /** The live sessions, read at scrape time. */
  sessions: () => Iterable<Session>;
}

/** Sessions by state and pipeline, starts, ends by reason, and how long stops take. */
export function sessionMetrics(registry: Registry, deps: SessionMetricsDeps): Pick<SessionObserver, 'sessionStarted' | 'sessionEnded'> {
  const pipelines = deps.catalog.list().map((e) => e.name);

  new Gauge({
    name: METRIC_PREFIX + 'sessions',
    help: 'Live sessions by pipeline and state.',
    labelNames: ['pipeline', 'state'] as const,
    registers: [registry],
    collect() {
      // Counted in plain objects, then set once per pipeline and state: prom-client hashes the
      // labels of every inc(), and a crowd has 10,000 sessions to count each scrape.
      const counts = new Map<string, Record<string, number>>(pipelines.map((p) => [p, zeroByState()]));
      for (const s of deps.sessions()) {
        let byState = counts.get(s.entry.name);
        if (!byState) counts.set(s.entry.name, (byState = zeroByState()));
        byState[s.state] = (byState[s.state] ?? 0) + 1;
      }
      this.reset();
      for (const [pipeline, byState] of counts) for (const state of Object.keys(byState)) this.set({ pipeline, state }, byState[state]!);
    },
  });
  const started = new Counter({
    name: METRIC_PREFIX + 'sessions_started_total',
    help: 'Sessions started (admitted, spool created, both sides running), by pipeline.',
    labelNames: ['pipeline'] as const,
    registers: [registry],
  });
  const ended = new Counter({
    name: METRIC_PREFIX + 'sessions_ended_total',
    help: 'Sessions ended, by pipeline and end reason (client, admin, disconnect, failed, shutdown, completed).',
    labelNames: ['pipeline', 'reason'] as const,
    registers: [registry],
  });
  const stop = new Histogram({
    name: METRIC_PREFIX + 'session_stop_seconds',
    help: 'Time from a stop request until nothing of the session runs, by outcome: cooperative (sides returned) or forced (code still running after STOP_GRACE_MS was terminated, or a step still waiting for a thread at twice that was taken back).',
    labelNames: ['outcome'] as const,
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  for (const pipeline of pipelines) {
    started.inc({ pipeline }, 0);
    for (const reason of END_REASONS) ended.inc({ pipeline, reason }, 0);
  }
  stop.zero({ outcome: 'cooperative' });
  stop.zero({ outcome: 'forced' });

  return {
    sessionStarted(session) {
      started.inc({ pipeline: session.entry.name });
    },
    sessionEnded(session, summary) {
      ended.inc({ pipeline: session.entry.name, reason: summary.reason });
      stop.observe({ outcome: summary.forced ? 'forced' : 'cooperative' }, summary.stopMs / 1000);
    },
  };
}
