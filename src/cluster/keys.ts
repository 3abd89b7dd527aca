/**
 * The one owner of the cluster's key and channel names. Every key carries the same hash tag
 * (`{c}`), so a Lua script may touch any of them, on a single Redis and on Redis Cluster alike.
 *
 * Layout (P = REDIS_PREFIX):
 * - `P{c}:instances`       ZSET instance id → lease expiry (ms, Redis TIME)
 * - `P{c}:instance:<id>`   HASH url, pool (JSON) of a live instance
 * - `P{c}:clock`          STRING Redis TIME (ms) of the last heartbeat of any instance (lua.ts catchUp)
 * - `P{c}:fenced:<id>`     STRING tombstone: the instance was declared lost (it must fence itself)
 * - `P{c}:owned:<id>`      SET ids of the sessions an instance holds (admitted, not yet ended)
 * - `P{c}:session:<sid>`   HASH owner, state, addr, d (the session's detail as JSON)
 * - `P{c}:sessions`        ZSET session id → createdAt (ms): the listing index
 * - `P{c}:ended`           ZSET session id → endedAt (ms): retention of ended records
 * - `P{c}:places`          HASH session id → client address: places held under MAX_SESSIONS
 * - `P{c}:clients`         HASH client address → places held (MAX_SESSIONS_PER_CLIENT)
 * - `P{c}:stops:<id>`      HASH session id → grace ms: stop intents an instance has still to carry out
 * - `P{c}:stopped:<sid>`   STRING the summary of a stop done for another instance, until that one reads it
 *                          (a mailbox: it expires after REPLY_TTL_MS if nobody does; liveness never uses it)
 * - channel `P{c}:ch:<id>` messages to one instance (stop intents)
 */
export class ClusterKeys {
  readonly #base: string;

  constructor(prefix: string) {
    this.#base = `${prefix}{c}:`;
  }

  /** The common start of every key, for scripts that build keys from ids. */
  get base(): string {
    return this.#base;
  }

  get instances(): string {
    return `${this.#base}instances`;
  }
  instance(id: string): string {
    return `${this.#base}instance:${id}`;
  }
  fenced(id: string): string {
    return `${this.#base}fenced:${id}`;
  }
  owned(id: string): string {
    return `${this.#base}owned:${id}`;
  }
  session(sid: string): string {
    return `${this.#base}session:${sid}`;
  }
  get sessions(): string {
    return `${this.#base}sessions`;
  }
  get ended(): string {
    return `${this.#base}ended`;
  }
  get places(): string {
    return `${this.#base}places`;
  }
  get clients(): string {
    return `${this.#base}clients`;
  }
  stops(instanceId: string): string {
    return `${this.#base}stops:${instanceId}`;
  }
  stopped(sid: string): string {
    return `${this.#base}stopped:${sid}`;
  }
  channel(instanceId: string): string {
    return `${this.#base}ch:${instanceId}`;
  }
}
