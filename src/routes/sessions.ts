import { Router } from 'express';
import { tandemError } from '../errors.js';
import type { components, operations } from '../generated/openapi.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { Session } from '../sessions/session.js';
import { spoolSizeBytes } from '../sessions/spool.js';
import { asyncRoute } from './async-route.js';

type Schemas = components['schemas'];
type ListQuery = NonNullable<operations['listSessions']['parameters']['query']>;
type StopQuery = NonNullable<operations['stopSession']['parameters']['query']>;

/** openapi.yaml's default for `limit` (the validator fills it in; kept here for direct callers). */
const DEFAULT_PAGE = 50;

export interface SessionRoutesDeps {
  sessions: SessionRegistry;
}

/**
 * GET /api/sessions, GET /api/sessions/{id}, POST /api/sessions/{id}/stop. Requests reach these
 * handlers already validated against openapi.yaml (types, ranges, uuid format, auth).
 */
export function sessionRoutes({ sessions }: SessionRoutesDeps): Router {
  const router = Router();

  router.get('/api/sessions', (req, res) => {
    const q = req.query as ListQuery;
    const limit = finite(q.limit ?? DEFAULT_PAGE, 'limit');
    const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const matching = sessions
      .inspectable()
      .filter((s) => (q.state === undefined || s.state === q.state) && (q.pipeline === undefined || s.entry.name === q.pipeline))
      .sort(newestFirst);
    const start = after === null ? 0 : matching.findIndex((s) => newestFirst(s, after) > 0);
    const from = start === -1 ? matching.length : start;
    const page = matching.slice(from, from + limit);
    const last = page[page.length - 1];
    const body: Schemas['SessionList'] = {
      items: page.map(listItem),
      total: matching.length,
      nextCursor: last && from + limit < matching.length ? encodeCursor(last) : null,
    };
    res.json(body);
  });

  router.get(
    '/api/sessions/:id',
    asyncRoute(async (req, res) => {
      res.json(await detail(found(sessions, req.params.id!)));
    }),
  );

  router.post(
    '/api/sessions/:id/stop',
    asyncRoute(async (req, res) => {
      const session = found(sessions, req.params.id!);
      const q = req.query as StopQuery;
      const graceMs = q.timeout === undefined ? undefined : finite(q.timeout, 'timeout') * 1000;
      // Idempotent: a session already stopping or ended answers with the summary of that stop.
      const summary = await session.stop('admin', graceMs);
      const body: Schemas['StopSummary'] = { ...summary };
      res.json(body);
    }),
  );

  return router;
}

/**
 * The validator coerces "1e400" and "Infinity" to Infinity and lets it through its minimum and
 * maximum checks (ajv coerceTypes); a non-finite number must never reach a slice or a timer.
 */
function finite(value: unknown, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw tandemError('VALIDATION', `query parameter ${name} must be a finite number (see openapi.yaml)`);
  return n;
}

function found(sessions: SessionRegistry, id: string): Session {
  const session = sessions.find(id);
  if (!session) throw tandemError('SESSION_NOT_FOUND', `no session ${id}: it never existed or ended too long ago (SESSION_RETAIN_SECONDS, SESSION_RETAIN_COUNT)`);
  return session;
}

interface SortKey {
  createdAt: number;
  id: string;
}

/** Newest first; ties (same ms) broken by id so the order, and so every cursor, is total. */
function newestFirst(a: SortKey, b: SortKey): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** A cursor names the last item of a page; the next page starts strictly after it. */
function encodeCursor(s: SortKey): string {
  return Buffer.from(`${s.createdAt}.${s.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): SortKey {
  const m = /^(\d{1,16})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw tandemError('VALIDATION', 'cursor is not one this server gave out; list again without it');
  return { createdAt: Number(m[1]), id: m[2]! };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A session as GET /api/sessions lists it (also a row of the live view). */
export function listItem(s: Session): Schemas['SessionSummaryItem'] {
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

async function detail(s: Session): Promise<Schemas['SessionDetail']> {
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
