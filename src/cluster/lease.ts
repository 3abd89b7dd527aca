import type { Logger } from 'pino';
import type { ClusterKeys } from './keys.js';
import { PRELUDE } from './lua.js';
import { LuaScript, type RedisClient } from './redis.js';

/**
 * Renews this instance's lease, or says why it cannot:
 * `ok` renewed; `registered` joined (first beat, or after fencing; a joining process reaps
 * what a dead process of the same INSTANCE_ID left); `rebuild` joined a Redis that
 * had forgotten it (restarted): its sessions must be written again; `fenced` it was declared lost
 * (or its lease expired before anyone noticed, and it reaped itself): it must stop its sessions
 * before it joins again.
 * ARGV: base, id, url, leaseMs, pool JSON, join (1 = may register), retainCount, retainMs.
 */
const HEARTBEAT = new LuaScript(`${PRELUDE}
local id, url, leaseMs, pool, join = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'
local now = nowMs()
catchUp(now, leaseMs)
local function register()
  redis.call('ZADD', base .. 'instances', now + leaseMs, id)
  redis.call('HSET', base .. 'instance:' .. id, 'url', url, 'pool', pool)
end
if redis.call('EXISTS', base .. 'fenced:' .. id) == 1 then
  if not join then return 'fenced' end
  redis.call('DEL', base .. 'fenced:' .. id)
  register()
  return 'registered'
end
local score = redis.call('ZSCORE', base .. 'instances', id)
if join and score then
  -- A new process under the id of one that died before its lease ran out (INSTANCE_ID set, a
  -- quick restart): what that one ran is gone with it.
  reapInstance(id, now, tonumber(ARGV[7]), tonumber(ARGV[8]))
  redis.call('DEL', base .. 'fenced:' .. id)
  register()
  return 'registered'
end
if not score then
  register()
  if join then return 'registered' end
  return 'rebuild'
end
if tonumber(score) < now then
  reapInstance(id, now, tonumber(ARGV[7]), tonumber(ARGV[8]))
  return 'fenced'
end
register()
return 'ok'
`);

/** Reaps every instance whose lease has expired; returns how many it reaped and how many live. ARGV: base, retainCount, retainMs, leaseMs. */
const REAP = new LuaScript(`${PRELUDE}
local now = nowMs()
catchUp(now, tonumber(ARGV[4]))
local dead = redis.call('ZRANGEBYSCORE', base .. 'instances', '-inf', '(' .. now)
for _, id in ipairs(dead) do reapInstance(id, now, tonumber(ARGV[2]), tonumber(ARGV[3])) end
prune(now, tonumber(ARGV[2]), tonumber(ARGV[3]))
return { #dead, redis.call('ZCARD', base .. 'instances') }
`);

export type BeatOutcome = 'ok' | 'registered' | 'rebuild' | 'fenced';

export interface LeaseDeps {
  client: RedisClient;
  keys: ClusterKeys;
  logger: Logger;
  instanceId: string;
  instanceUrl: string;
  leaseMs: number;
  retainCount: number;
  retainMs: number;
}

/**
 * This instance's membership of the cluster: a lease in a ZSET (id → expiry by Redis TIME) that
 * it renews every heartbeat, and that every instance checks for the others. Liveness is this
 * lease, never a key-expiry event (those fire late, or not at all). Claiming a lost instance's
 * cleanup is one Lua script, so exactly one instance does it.
 */
export class Lease {
  readonly #d: LeaseDeps;
  /** Whether the next beat may (re)register: at start, and after fenced sessions were stopped. */
  #join = true;

  constructor(deps: LeaseDeps) {
    this.#d = deps;
  }

  /** Renews the lease (or joins); `pool` is this instance's GET /api/pool view, for the others. */
  async beat(pool: unknown): Promise<BeatOutcome> {
    const d = this.#d;
    const outcome = (await HEARTBEAT.run(d.client, [], [
      d.keys.base,
      d.instanceId,
      d.instanceUrl,
      d.leaseMs,
      JSON.stringify(pool),
      this.#join ? 1 : 0,
      d.retainCount,
      d.retainMs,
    ])) as BeatOutcome;
    if (outcome === 'registered' || outcome === 'rebuild') this.#join = false;
    return outcome;
  }

  /** After a fence: this instance's sessions are stopped, the next beat joins again. */
  rejoin(): void {
    this.#join = true;
  }

  /** Fails the sessions of every instance whose lease expired; returns [reaped, live instances]. */
  async reap(): Promise<[number, number]> {
    const d = this.#d;
    const [reaped, live] = (await REAP.run(d.client, [], [d.keys.base, d.retainCount, d.retainMs, d.leaseMs])) as [number, number];
    if (reaped > 0) d.logger.warn({ reaped }, 'instances lost: their sessions are marked failed (instance_lost)');
    return [reaped, live];
  }
}
