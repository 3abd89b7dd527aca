import type { components } from '../generated/openapi.js';
import type { Session } from '../sessions/session.js';
import { spoolSizeBytes } from '../sessions/spool.js';

type Schemas = components['schemas'];

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A session as GET /api/sessions lists it (also a row of the live view). */
export function listItem(s: Session): Schemas['SessionSummaryItem'] {
  s.catchUp();
  return {
    id: s.id,
    pipeline: s.entry.name,
    url: s.url,
    state: s.state,
    endReason: s.endReason,
    clientAddress: s.clientAddress,
    createdAt: new Date(s.createdAt).toISOString(),
    startedAt: iso(s.startedAt),
    endedAt: iso(s.endedAt),
    produced: s.produced,
    delivered: s.delivered,
  };
}

/** A listing row from a detail (a cluster's records keep the detail). */
export function itemOfDetail(d: Schemas['SessionDetail']): Schemas['SessionSummaryItem'] {
  const { id, pipeline, url, state, endReason, clientAddress, createdAt, startedAt, endedAt } = d;
  const item: Schemas['SessionSummaryItem'] = {
    id,
    pipeline,
    url,
    state,
    endReason,
    clientAddress,
    createdAt,
    startedAt,
    endedAt,
    produced: d.counters.produced,
    delivered: d.counters.delivered,
  };
  if (d.instance !== undefined) item.instance = d.instance;
  return item;
}

/** A session as GET /api/sessions/{id} shows it. */
export async function detail(s: Session): Promise<Schemas['SessionDetail']> {
  s.catchUp();
  return {
    id: s.id,
    pipeline: s.entry.name,
    url: s.url,
    options: s.options,
    state: s.state,
    endReason: s.endReason,
    error: s.error,
    clientAddress: s.clientAddress,
    createdAt: new Date(s.createdAt).toISOString(),
    startedAt: iso(s.startedAt),
    endedAt: iso(s.endedAt),
    producer: s.sideInfo('producer'),
    consumer: s.sideInfo('consumer'),
    counters: { produced: s.produced, consumed: s.consumed, delivered: s.delivered, bytesProduced: s.bytesProduced },
    lag: s.lag(),
    latencyMs: { ...s.latency.percentiles(), samples: s.latency.count },
    spoolSizeBytes: await spoolSizeBytes(s.spoolDir),
    attached: s.attached,
    spooled: { chunks: s.spooledChunks, bytes: s.spooledBytes },
    summary: s.summary,
  };
}
