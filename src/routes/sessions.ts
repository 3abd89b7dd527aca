import { Router } from 'express';
import { tandemError } from '../errors.js';
import type { components, operations } from '../generated/openapi.js';
import { asyncRoute } from './async-route.js';
import type { SessionDirectory } from './session-directory.js';

export { listItem } from './session-views.js';

type Schemas = components['schemas'];
type ListQuery = NonNullable<operations['listSessions']['parameters']['query']>;
type StopQuery = NonNullable<operations['stopSession']['parameters']['query']>;

/** openapi.yaml's default for `limit` (the validator fills it in; kept here for direct callers). */
const DEFAULT_PAGE = 50;

export interface SessionRoutesDeps {
  /** This instance's sessions, or the cluster's (src/cluster/directory.ts). */
  directory: SessionDirectory;
  /** This instance's sessions alone: what another instance asks for with OWNER_ONLY_HEADER. */
  local: SessionDirectory;
}

/**
 * Sent by an instance asking the owner of a session for its live view: answer from this
 * instance's own sessions, never ask on (src/cluster/directory.ts).
 */
export const OWNER_ONLY_HEADER = 'x-tandem-owner-only';

/**
 * GET /api/sessions, GET /api/sessions/{id}, POST /api/sessions/{id}/stop. Requests reach these
 * handlers already validated against openapi.yaml (types, ranges, uuid format, auth).
 */
export function sessionRoutes(deps: SessionRoutesDeps): Router {
  const router = Router();
  const source = (req: { get(name: string): string | undefined }) => (req.get(OWNER_ONLY_HEADER) ? deps.local : deps.directory);

  router.get('/api/sessions', asyncRoute(async (req, res) => {
    const q = req.query as ListQuery;
    const limit = finite(q.limit ?? DEFAULT_PAGE, 'limit');
    const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const matching = (await source(req).list())
      .filter((s) => (q.state === undefined || s.state === q.state) && (q.pipeline === undefined || s.pipeline === q.pipeline))
      .map((s) => ({ ...s, ms: Date.parse(s.createdAt) }))
      .sort(newestFirst);
    const start = after === null ? 0 : matching.findIndex((s) => newestFirst(s, after) > 0);
    const from = start === -1 ? matching.length : start;
    const page = matching.slice(from, from + limit);
    const last = page[page.length - 1];
    const body: Schemas['SessionList'] = {
      items: page.map(({ ms: _ms, ...item }) => item),
      total: matching.length,
      nextCursor: last && from + limit < matching.length ? encodeCursor(last) : null,
    };
    res.json(body);
  }));

  router.get(
    '/api/sessions/:id',
    asyncRoute(async (req, res) => {
      const id = req.params.id!;
      res.json(found(await source(req).detail(id), id));
    }),
  );

  router.post(
    '/api/sessions/:id/stop',
    asyncRoute(async (req, res) => {
      const id = req.params.id!;
      const q = req.query as StopQuery;
      const graceMs = q.timeout === undefined ? undefined : finite(q.timeout, 'timeout') * 1000;
      const body: Schemas['StopSummary'] = found(await source(req).stop(id, graceMs), id);
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

function found<T>(value: T | null, id: string): T {
  if (value === null) throw tandemError('SESSION_NOT_FOUND', `no session ${id}: it never existed or ended too long ago (SESSION_RETAIN_SECONDS, SESSION_RETAIN_COUNT)`);
  return value;
}

interface SortKey {
  /** createdAt in ms. */
  ms: number;
  id: string;
}

/** Newest first; ties (same ms) broken by id so the order, and so every cursor, is total. */
function newestFirst(a: SortKey, b: SortKey): number {
  return b.ms - a.ms || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** A cursor names the last item of a page; the next page starts strictly after it. */
function encodeCursor(s: SortKey): string {
  return Buffer.from(`${s.ms}.${s.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): SortKey {
  const m = /^(\d{1,16})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw tandemError('VALIDATION', 'cursor is not one this server gave out; list again without it');
  return { ms: Number(m[1]), id: m[2]! };
}
