import { refusals, tandemError } from '../errors.js';
import type { ClusterKeys } from './keys.js';
import { PRELUDE } from './lua.js';
import { clusterUnavailable, LuaScript, type RedisClient } from './redis.js';

/**
 * Takes a place for a session under MAX_SESSIONS and MAX_SESSIONS_PER_CLIENT for the whole
 * cluster in one step: concurrent STARTs on any instances can never admit more than the limits.
 * Only an instance holding a live lease admits (a fenced one is not part of the cluster).
 * ARGV: base, instance id, session id, client address ('' = none), max, max per client (0 = none).
 */
const ADMIT = new LuaScript(`${PRELUDE}
local id, sid, addr, max, perClient = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if not leaseLive(id, nowMs()) then return { 'unjoined', 0 } end
local held = redis.call('HLEN', base .. 'places')
if held >= max then return { 'full', held } end
if addr ~= '' and perClient > 0 then
  local n = tonumber(redis.call('HGET', base .. 'clients', addr) or '0')
  if n >= perClient then return { 'client', n } end
end
redis.call('HSET', base .. 'places', sid, addr)
if addr ~= '' then redis.call('HINCRBY', base .. 'clients', addr, 1) end
redis.call('SADD', base .. 'owned:' .. id, sid)
return { 'ok', held + 1 }
`);

/** Frees a session's place; a second call (or one after its instance was reaped) does nothing. ARGV: base, session id. */
const RELEASE = new LuaScript(`${PRELUDE}
return release(ARGV[2])
`);

/** Takes a place again without checking limits (Redis lost it: restarted). ARGV: base, instance id, session id, address. */
const RESTORE = new LuaScript(`${PRELUDE}
local id, sid, addr = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', base .. 'places', sid) == 0 then
  redis.call('HSET', base .. 'places', sid, addr)
  if addr ~= '' then redis.call('HINCRBY', base .. 'clients', addr, 1) end
end
redis.call('SADD', base .. 'owned:' .. id, sid)
return 1
`);

export interface AdmissionLimits {
  maxSessions: number;
  maxSessionsPerClient: number;
}

export class ClusterAdmission {
  readonly #client: RedisClient;
  readonly #keys: ClusterKeys;
  readonly #instanceId: string;
  readonly #limits: AdmissionLimits;

  constructor(client: RedisClient, keys: ClusterKeys, instanceId: string, limits: AdmissionLimits) {
    this.#client = client;
    this.#keys = keys;
    this.#instanceId = instanceId;
    this.#limits = limits;
  }

  /**
   * Takes the session's place: `admitted`, or `unjoined` when this instance holds no live lease
   * (not joined yet, Redis restarted and forgot it, or declared lost): the caller may beat and ask again.
   * @throws TOO_MANY_SESSIONS / TOO_MANY_CLIENT_SESSIONS at the cluster's limits;
   * CLUSTER_UNAVAILABLE when Redis does not answer.
   */
  async admit(sessionId: string, clientAddress: string | null): Promise<'admitted' | 'unjoined'> {
    let reply: [string, number];
    try {
      reply = (await ADMIT.run(this.#client, [], [
        this.#keys.base,
        this.#instanceId,
        sessionId,
        clientAddress ?? '',
        this.#limits.maxSessions,
        this.#limits.maxSessionsPerClient,
      ])) as [string, number];
    } catch (err) {
      throw clusterUnavailable('START', err);
    }
    const [outcome] = reply;
    if (outcome === 'ok') return 'admitted';
    if (outcome === 'unjoined') return 'unjoined';
    if (outcome === 'full') throw refusals.tooManySessions(this.#limits.maxSessions);
    if (outcome === 'client') {
      throw tandemError(
        'TOO_MANY_CLIENT_SESSIONS',
        `this address already has ${this.#limits.maxSessionsPerClient} sessions in the cluster (MAX_SESSIONS_PER_CLIENT); retry later`,
      );
    }
    throw clusterUnavailable('START', new Error(`ADMIT answered ${String(outcome)}`));
  }

  release(sessionId: string): Promise<unknown> {
    return RELEASE.run(this.#client, [], [this.#keys.base, sessionId]);
  }

  restore(sessionId: string, clientAddress: string | null): Promise<unknown> {
    return RESTORE.run(this.#client, [], [this.#keys.base, this.#instanceId, sessionId, clientAddress ?? '']);
  }
}
