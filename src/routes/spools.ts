import { Router } from 'express';
import type { components } from '../generated/openapi.js';
import type { KeptSpool, KeptSpools } from '../sessions/kept-spools.js';
import type { SessionRegistry } from '../sessions/registry.js';
import { asyncRoute } from './async-route.js';

type Schemas = components['schemas'];

export interface SpoolRoutesDeps {
  keptSpools: KeptSpools;
  sessions: SessionRegistry;
  /** KEPT_SPOOLS_MAX_BYTES and KEPT_SPOOLS_MAX_AGE_SECONDS, reported with the list. */
  keptSpoolLimits: { maxBytes: number; maxAgeMs: number };
}

/**
 * GET /api/spools and DELETE /api/spools/{id}: kept spools, seen and removed by operators.
 * Requests arrive validated against openapi.yaml (uuid format, tokens: read to list, admin to delete).
 */
export function spoolRoutes({ keptSpools, sessions, keptSpoolLimits }: SpoolRoutesDeps): Router {
  const router = Router();
  const view = (s: KeptSpool, now: number): Schemas['KeptSpool'] => ({
    id: s.id,
    session: sessions.find(s.id)?.state ?? null,
    live: s.live,
    sizeBytes: s.sizeBytes,
    files: s.files,
    keptAt: new Date(s.keptAtMs).toISOString(),
    ageSeconds: Math.max(0, (now - s.keptAtMs) / 1000),
  });

  router.get(
    '/api/spools',
    asyncRoute(async (_req, res) => {
      const spools = await keptSpools.list();
      const now = Date.now();
      const body: Schemas['KeptSpoolList'] = {
        items: spools.map((s) => view(s, now)),
        totalBytes: spools.reduce((n, s) => n + (s.live ? 0 : s.sizeBytes), 0),
        maxBytes: keptSpoolLimits.maxBytes,
        maxAgeSeconds: Math.round(keptSpoolLimits.maxAgeMs / 1000),
      };
      res.json(body);
    }),
  );

  router.delete(
    '/api/spools/:id',
    asyncRoute(async (req, res) => {
      const removed = await keptSpools.remove(req.params.id!);
      res.json(view(removed, Date.now()));
    }),
  );

  return router;
}
