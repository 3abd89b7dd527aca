import type { Session } from './session.js';

/**
 * What the registry tells the world beyond this instance about its sessions' lifecycle. Alone,
 * an instance needs none of it (`LOCAL_LEDGER`); in a cluster (src/cluster/ledger.ts) it is the
 * cluster-wide admission and the shared index. The registry's own bookkeeping stays first:
 * a ledger adds refusals (admit) and records, it never replaces the local checks.
 */
export interface SessionLedger {
  /**
   * Takes a place for session `id` before anything of it runs.
   * @throws a coded error (TOO_MANY_SESSIONS, TOO_MANY_CLIENT_SESSIONS, CLUSTER_UNAVAILABLE).
   */
  admit(id: string, clientAddress: string | null): Promise<void>;
  /**
   * The session runs (after START succeeded). Awaited before the client hears `started`, so that
   * a session id a client knows is already found everywhere; never rejects.
   */
  started(session: Session): Promise<void>;
  /** Nothing of session `id` runs any more (Session's onReleased), or it never started: its place is free. */
  released(id: string): void;
  /** The session has ended (state, endedAt, summary are final). */
  ended(session: Session): void;
}

/** One instance alone: the registry's own counts are the whole truth. */
export const LOCAL_LEDGER: SessionLedger = {
  admit: async () => {},
  started: async () => {},
  released: () => {},
  ended: () => {},
};
