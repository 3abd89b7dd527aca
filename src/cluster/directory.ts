import type { Logger } from 'pino';
import type { components } from '../generated/openapi.js';
import { tandemError } from '../errors.js';
import type { SessionDirectory } from '../routes/session-directory.js';
import type { SessionOwners } from '../ws/relay.js';
import { itemOfDetail } from '../routes/session-views.js';
import { OWNER_ONLY_HEADER } from '../routes/sessions.js';
import type { ClusterKeys } from './keys.js';
import { PRELUDE } from './lua.js';
import { stopBoundMs } from '../sessions/session.js';
import type { ClusterObserver } from './observer.js';
import { clusterUnavailable, LuaScript, type RedisClient } from './redis.js';
import type { RemoteStops } from './remote.js';

/** How often a caller looks whether the owner has finished a stop, ms. */
const STOP_POLL_MS = 25;

type Schemas = components['schemas'];

/**
 * Writes a session's record (owner instance, state, end reason, its detail as JSON) and indexes
 * it. Refused when the writer holds no live lease (it was declared lost: its sessions' records
 * are the reaper's now), and a live state never overwrites an ended one (a snapshot taken before
 * the end may arrive after it). Ended records are bounded like SESSION_RETAIN_COUNT/SECONDS.
 * ARGV: base, instance id, session id, state, reason, createdAt ms, endedAt ms, address, detail JSON, retainCount, retainMs.
 */
const RECORD = new LuaScript(`${PRELUDE}
local id, sid, state, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = nowMs()
if not leaseLive(id, now) then return 'fenced' end
local key = base .. 'session:' .. sid
local ended = isEnded(state)
if not ended and redis.call('SISMEMBER', base .. 'owned:' .. id, sid) == 0 then return 'gone' end
redis.call('HSET', key, 'owner', id, 'state', state, 'reason', reason, 'createdAt', ARGV[6], 'endedAt', ARGV[7], 'addr', ARGV[8], 'd', ARGV[9], 'at', now)
redis.call('ZADD', base .. 'sessions', tonumber(ARGV[6]), sid)
if ended then
  redis.call('SREM', base .. 'owned:' .. id, sid)
  redis.call('ZADD', base .. 'ended', now, sid)
  prune(now, tonumber(ARGV[10]), tonumber(ARGV[11]))
end
return 'ok'
`);

const RECORD_FIELDS = ['owner', 'state', 'reason', 'endedAt', 'd', 'at'] as const;

export interface ClusterDirectoryDeps {
  client: RedisClient;
  keys: ClusterKeys;
  instanceId: string;
  /** This instance's own sessions. */
  local: SessionDirectory;
  remote: RemoteStops;
  observer: ClusterObserver;
  logger: Logger;
  callTimeoutMs: number;
  /** STOP_GRACE_MS: how long a stop may take before its sides are forced. */
  stopGraceMs: number;
  retainCount: number;
  retainMs: number;
  /** Bearer token to present to another instance's /api (ADMIN_TOKEN), if the API needs one. */
  adminToken: string | undefined;
}

/** What the routes see in a cluster: the shared index, and the owner asked for what is live. */
export class ClusterDirectory implements SessionDirectory, SessionOwners {
  readonly #d: ClusterDirectoryDeps;

  constructor(deps: ClusterDirectoryDeps) {
    this.#d = deps;
  }

  /** Writes a session's record; resolves with the script's verdict (ok, fenced, gone). */
  async write(detail: Schemas['SessionDetail'], createdAtMs: number, endedAtMs: number | null): Promise<string> {
    const d = this.#d;
    return (await RECORD.run(d.client, [], [
      d.keys.base,
      d.instanceId,
      detail.id,
      detail.state,
      detail.endReason ?? '',
      createdAtMs,
      endedAtMs ?? '',
      detail.clientAddress ?? '',
      JSON.stringify(detail),
      d.retainCount,
      d.retainMs,
    ])) as string;
  }

  /** Listing reads the index and the records, never asks the other instances. */
  async list(): Promise<Schemas['SessionSummaryItem'][]> {
    const { client, keys } = this.#d;
    const ids = await this.#redis('list sessions', () => client.sendCommand(['ZREVRANGE', keys.sessions, '0', '-1']) as Promise<string[]>);
    const records = await this.#redis('list sessions', () => Promise.all(ids.map((id) => this.#record(id))));
    return records.filter((r) => r !== null).map(itemOfDetail);
  }

  async detail(id: string): Promise<Schemas['SessionDetail'] | null> {
    const record = await this.#redis('inspect', () => this.#record(id));
    if (record === null) return this.#d.local.detail(id);
    if (record.instance === this.#d.instanceId) {
      const local = await this.#d.local.detail(id);
      if (local) return { ...local, instance: this.#d.instanceId };
      return record;
    }
    if (isEnded(record.state)) return record;
    const live = await this.#askOwner(record.instance!, id);
    return live ?? record;
  }

  async stop(id: string, graceMs: number | undefined): Promise<Schemas['StopSummary'] | null> {
    const d = this.#d;
    const record = await this.#redis('stop', () => this.#record(id));
    if (record === null || record.instance === d.instanceId) return d.local.stop(id, graceMs);
    if (isEnded(record.state)) return summaryOf(record);
    const began = performance.now();
    await this.#redis('stop', () => d.remote.request(record.instance!, id, graceMs));
    // The owner stops it as it would its own (graceful, then forced after the grace): wait for
    // its record to say it ended, a call timeout beyond the longest such stop at most.
    const deadline = Date.now() + stopBoundMs(graceMs ?? d.stopGraceMs) + d.callTimeoutMs;
    for (;;) {
      const reply = await this.#redis('stop', () => d.remote.takeReply(id));
      const now = reply === null ? await this.#redis('stop', () => this.#record(id)) : null;
      if (reply !== null || (now !== null && isEnded(now.state))) {
        d.observer.call('stop', (performance.now() - began) / 1000, 'ok');
        return reply !== null ? (JSON.parse(reply) as Schemas['StopSummary']) : summaryOf(now!);
      }
      if (Date.now() > deadline) {
        d.observer.call('stop', (performance.now() - began) / 1000, 'timeout');
        throw tandemError(
          'CLUSTER_UNAVAILABLE',
          `instance ${record.instance} has not confirmed the stop of session ${id} within the grace and CLUSTER_CALL_TIMEOUT_MS; the stop request is kept and carried out when it can`,
        );
      }
      await new Promise((r) => setTimeout(r, STOP_POLL_MS));
    }
  }

  /** INSTANCE_URL of the instance running session `id`; null when none does but this one (unknown, ended, or here). */
  async ownerOf(id: string): Promise<string | null> {
    const d = this.#d;
    const record = await this.#redis('RESUME', () => this.#record(id));
    if (record === null || record.instance === d.instanceId || isEnded(record.state)) return null;
    return this.#redis('RESUME', () => d.client.sendCommand(['HGET', d.keys.instance(record.instance!), 'url']) as Promise<string | null>);
  }

  /** A record as the detail it holds, its state and end overlaid (the reaper changes only those). */
  async #record(id: string): Promise<Schemas['SessionDetail'] | null> {
    const { client, keys } = this.#d;
    const row = (await client.sendCommand(['HMGET', keys.session(id), ...RECORD_FIELDS])) as (string | null)[];
    const [owner, state, reason, endedAt, json, at] = row;
    if (!owner || !json) return null;
    const detail = JSON.parse(json) as Schemas['SessionDetail'];
    detail.instance = owner;
    detail.state = state as Schemas['SessionState'];
    detail.endReason = reason ? (reason as Schemas['EndReason']) : null;
    if (endedAt && detail.endedAt === null) detail.endedAt = new Date(Number(endedAt)).toISOString();
    if (isEnded(detail.state)) detail.attached = false;
    else detail.snapshotAt = new Date(Number(at)).toISOString();
    return detail;
  }

  /** The live view from the owner, or null (the caller falls back to the record, marked as a snapshot). */
  async #askOwner(owner: string, id: string): Promise<Schemas['SessionDetail'] | null> {
    const d = this.#d;
    const began = performance.now();
    const seconds = () => (performance.now() - began) / 1000;
    try {
      const url = (await d.client.sendCommand(['HGET', d.keys.instance(owner), 'url'])) as string | null;
      if (!url) return null;
      const headers: Record<string, string> = { [OWNER_ONLY_HEADER]: '1', accept: 'application/json' };
      if (d.adminToken) headers.authorization = `Bearer ${d.adminToken}`;
      const res = await fetch(`${url}/api/sessions/${id}`, { headers, signal: AbortSignal.timeout(d.callTimeoutMs) });
      if (!res.ok) {
        d.observer.call('inspect', seconds(), 'error');
        return null;
      }
      const live = (await res.json()) as Schemas['SessionDetail'];
      d.observer.call('inspect', seconds(), 'ok');
      const { snapshotAt: _none, ...fresh } = live;
      return { ...fresh, instance: owner };
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      d.observer.call('inspect', seconds(), timedOut ? 'timeout' : 'error');
      d.logger.debug({ owner, session: id, err: String(err) }, 'owner did not answer an inspect; answering with its last snapshot');
      return null;
    }
  }

  async #redis<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw clusterUnavailable(what, err);
    }
  }
}

function isEnded(state: string): boolean {
  return state === 'stopped' || state === 'failed';
}

/** The stop summary a record holds; a reaped record has none and gets one from its counters. */
function summaryOf(d: Schemas['SessionDetail']): Schemas['StopSummary'] {
  return (
    d.summary ?? {
      session: d.id,
      reason: d.endReason ?? 'instance_lost',
      chunks: d.counters.delivered,
      produced: d.counters.produced,
      forced: false,
      stopMs: 0,
      error: d.error,
    }
  );
}
