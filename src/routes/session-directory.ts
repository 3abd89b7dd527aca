import type { components } from '../generated/openapi.js';
import type { SessionRegistry } from '../sessions/registry.js';
import { detail, listItem } from './session-views.js';

type Schemas = components['schemas'];

/**
 * Where the session routes find sessions: this instance's registry alone (`localDirectory`), or
 * the cluster's shared index (src/cluster/directory.ts). The routes page, filter and answer the
 * same way over either.
 */
export interface SessionDirectory {
  /** Every inspectable session (live, and ended ones still retained), in any order. */
  list(): Promise<Schemas['SessionSummaryItem'][]>;
  /** null: no such session (never, or ended too long ago). */
  detail(id: string): Promise<Schemas['SessionDetail'] | null>;
  /** Stops it (graceful, then forced after `graceMs`); idempotent. null: no such session. */
  stop(id: string, graceMs: number | undefined): Promise<Schemas['StopSummary'] | null>;
}

/** The sessions of this instance. */
export function localDirectory(sessions: SessionRegistry): SessionDirectory {
  return {
    list: async () => sessions.inspectable().map(listItem),
    async detail(id) {
      const s = sessions.find(id);
      return s ? detail(s) : null;
    },
    async stop(id, graceMs) {
      const s = sessions.find(id);
      if (!s) return null;
      // Idempotent: a session already stopping or ended answers with the summary of that stop.
      return { ...(await s.stop('admin', graceMs)) };
    },
  };
}
