import type { components } from '../generated/openapi.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { poolView } from '../routes/pool.js';
import { listItem } from '../routes/sessions.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { Session } from '../sessions/session.js';

type Schemas = components['schemas'];

/** A session as the live view shows it: its list row (GET /api/sessions), lag, latency and threads. */
export function liveSession(s: Session): Schemas['LiveSession'] {
  const { p50, p99 } = s.latency.percentiles();
  return {
    ...listItem(s),
    lag: s.lag(),
    latencyMs: { p50, p99 },
    producerThreadId: s.sideInfo('producer').threadId,
    consumerThreadId: s.sideInfo('consumer').threadId,
  };
}

/**
 * What the live view shows right now: the pool as GET /api/pool shows it, the newest chart
 * sample, and the newest `maxSessions` sessions (live ones first, then retained ended ones).
 */
export function liveSnapshot(
  sessions: SessionRegistry,
  pool: WorkerPool,
  sample: Schemas['LiveSample'],
  maxSessions: number,
): Schemas['LiveSnapshot'] {
  const all = sessions.inspectable();
  const live = all.filter((s) => s.endedAt === null).sort(newestFirst);
  const ended = all.filter((s) => s.endedAt !== null).sort(newestFirst);
  const shown = [...live, ...ended].slice(0, maxSessions);
  return {
    at: Date.now(),
    pool: poolView(pool),
    sample,
    sessions: shown.map(liveSession),
    totals: { live: live.length, retained: ended.length, shown: shown.length },
  };
}

function newestFirst(a: Session, b: Session): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}
