import type { Logger } from 'pino';
import type { ClusterKeys } from './keys.js';
import type { RedisClient } from './redis.js';

/** How long a stop's summary waits for the instance that asked for it (which deletes it on reading). */
const REPLY_TTL_MS = 120_000;

export interface RemoteStopDeps {
  client: RedisClient;
  subscriber: RedisClient;
  keys: ClusterKeys;
  instanceId: string;
  logger: Logger;
  /** Stops a session of this instance for an admin (idempotent); null when it is not here. */
  stopLocal(sessionId: string, graceMs: number | undefined): Promise<object | null>;
}

/**
 * Stop anywhere: the instance a stop request lands on writes a durable intent into the owner's
 * hash of intents, then publishes the session id on the owner's channel. The owner acts on the
 * message, and also sweeps its intents every heartbeat and after every resubscribe: pub/sub
 * loses messages while a subscriber reconnects, the intent is never lost. The intent is removed
 * once the owner has stopped the session (its record then holds the summary).
 */
export class RemoteStops {
  readonly #d: RemoteStopDeps;
  /** Intents being carried out now (a message and a sweep may name the same one). */
  readonly #running = new Set<string>();
  #listening = false;

  constructor(deps: RemoteStopDeps) {
    this.#d = deps;
  }

  /**
   * Listens on this instance's channel (node-redis resubscribes by itself after reconnects).
   * Called again every heartbeat until it succeeds once (Redis may be away at start-up).
   */
  async listen(): Promise<void> {
    if (this.#listening) return;
    const { subscriber, keys, instanceId } = this.#d;
    await subscriber.subscribe(keys.channel(instanceId), (sid) => void this.#carryOut(sid));
    this.#listening = true;
    // Messages published while the subscriber was away are lost: sweep once it is back.
    subscriber.on('ready', () => void this.sweep().catch(() => {}));
  }

  /** Asks `owner` to stop session `sid` (durable intent, then the message). */
  async request(owner: string, sid: string, graceMs: number | undefined): Promise<void> {
    const { client, keys } = this.#d;
    await client.sendCommand(['HSET', keys.stops(owner), sid, graceMs === undefined ? '' : String(Math.round(graceMs))]);
    await client.sendCommand(['PUBLISH', keys.channel(owner), sid]);
  }

  /** The summary of a stop the owner did for this instance, taken (read and deleted); null if not there yet. */
  async takeReply(sid: string): Promise<string | null> {
    const { client, keys } = this.#d;
    return (await client.sendCommand(['GETDEL', keys.stopped(sid)])) as string | null;
  }

  /** Carries out every intent addressed to this instance. */
  async sweep(): Promise<void> {
    const { client, keys, instanceId } = this.#d;
    const flat = (await client.sendCommand(['HKEYS', keys.stops(instanceId)])) as string[];
    for (const sid of flat) void this.#carryOut(sid);
  }

  async #carryOut(sid: string): Promise<void> {
    if (this.#running.has(sid)) return;
    this.#running.add(sid);
    const { client, keys, instanceId, logger } = this.#d;
    try {
      const grace = (await client.sendCommand(['HGET', keys.stops(instanceId), sid])) as string | null;
      if (grace === null) return; // done already
      const summary = await this.#d.stopLocal(sid, grace === '' ? undefined : Number(grace));
      // The record may be gone at once (SESSION_RETAIN_COUNT=0): the caller reads the summary here.
      if (summary) await client.sendCommand(['SET', keys.stopped(sid), JSON.stringify(summary), 'PX', String(REPLY_TTL_MS)]);
      await client.sendCommand(['HDEL', keys.stops(instanceId), sid]);
    } catch (err) {
      // The intent stays: the next sweep carries it out.
      logger.debug({ session: sid, err: String(err) }, 'stop intent not carried out yet');
    } finally {
      this.#running.delete(sid);
    }
  }
}
