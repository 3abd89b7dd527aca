import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TandemError, tandemError } from '../errors.js';
import type { ClusterConfig } from '../config.js';
import type { components } from '../generated/openapi.js';
import type { SessionDirectory } from '../routes/session-directory.js';
import { detail } from '../routes/session-views.js';
import type { SessionLedger } from '../sessions/ledger.js';
import type { SessionRegistry } from '../sessions/registry.js';
import type { Session } from '../sessions/session.js';
import { ClusterAdmission } from './admission.js';
import { ClusterDirectory } from './directory.js';
import { ClusterKeys } from './keys.js';
import { Lease } from './lease.js';
import { NO_CLUSTER_METRICS, type ClusterObserver } from './observer.js';
import { clusterUnavailable, RedisConnections } from './redis.js';
import { RemoteStops } from './remote.js';
import type { RelayDeps } from '../ws/connection.js';

type Schemas = components['schemas'];

const notJoined = () =>
  tandemError('CLUSTER_UNAVAILABLE', 'this instance has not joined the cluster yet (or is rejoining after it was declared lost); retry shortly');

export interface ClusterDeps {
  config: ClusterConfig;
  logger: Logger;
  maxSessions: number;
  maxSessionsPerClient: number;
  stopGraceMs: number;
  retainCount: number;
  retainMs: number;
  adminToken: string | undefined;
  /** CLIENT_TOKEN, which a relay presents to the owner as any client would. */
  clientToken: string | undefined;
  /** SEND_BUFFER_HIGH_BYTES: a relay stops reading the owner above this many bytes queued to the client. */
  sendBufferHighBytes: number;
  /** This instance's pool as GET /api/pool shows it, reported to the others each heartbeat. */
  poolView(): Schemas['Pool'];
  observer?: ClusterObserver;
}

/** CONNECTING until the first heartbeat joined; RUNNING; CLOSED once close() ran. */
type ClusterState = 'CONNECTING' | 'RUNNING' | 'CLOSED';

/**
 * This instance as a member of a cluster on one Redis: its lease and heartbeat (lease.ts), the
 * cluster-wide admission (admission.ts), the shared index of sessions (directory.ts), stops
 * asked by other instances (remote.ts). It is the registry's ledger (what the registry tells the
 * cluster) and the routes' directory. Constructed only when REDIS_URL is set.
 */
export class Cluster implements SessionLedger {
  readonly id: string;
  readonly directory: ClusterDirectory;
  readonly #d: ClusterDeps;
  readonly #redis: RedisConnections;
  readonly #keys: ClusterKeys;
  readonly #admission: ClusterAdmission;
  readonly #remote: RemoteStops;
  readonly #observer: ClusterObserver;
  #lease: Lease | null = null;
  #registry: SessionRegistry | null = null;
  #local: SessionDirectory | null = null;
  /** This instance's own sessions, known once start() has them (the registry is built after the cluster: it is its ledger). */
  readonly #localView: SessionDirectory = {
    list: () => this.#local!.list(),
    detail: (id) => this.#local!.detail(id),
    stop: (id, graceMs) => this.#local!.stop(id, graceMs),
  };
  #state: ClusterState = 'CONNECTING';
  #timer: NodeJS.Timeout | null = null;
  /** The heartbeat in flight, if any: the timer's and an early one asked by admit() are the same beat. */
  #beating: Promise<void> | null = null;
  /** Writes that failed while Redis was away, done again at the next heartbeat. */
  readonly #pendingEnds = new Map<string, Session>();
  readonly #pendingReleases = new Set<string>();

  constructor(deps: ClusterDeps) {
    this.#d = deps;
    this.id = deps.config.instanceId ?? randomUUID();
    this.#observer = deps.observer ?? NO_CLUSTER_METRICS;
    this.#redis = new RedisConnections(deps.config, deps.logger);
    this.#keys = new ClusterKeys(deps.config.prefix);
    this.#admission = new ClusterAdmission(this.#redis.commands, this.#keys, this.id, {
      maxSessions: deps.maxSessions,
      maxSessionsPerClient: deps.maxSessionsPerClient,
    });
    this.#remote = new RemoteStops({
      client: this.#redis.commands,
      subscriber: this.#redis.subscriber,
      keys: this.#keys,
      instanceId: this.id,
      logger: deps.logger,
      stopLocal: (sid, graceMs) => this.#localView.stop(sid, graceMs),
    });
    this.directory = new ClusterDirectory({
      client: this.#redis.commands,
      keys: this.#keys,
      instanceId: this.id,
      local: this.#localView,
      remote: this.#remote,
      observer: this.#observer,
      logger: deps.logger,
      callTimeoutMs: deps.config.callTimeoutMs,
      stopGraceMs: deps.stopGraceMs,
      retainCount: deps.retainCount,
      retainMs: deps.retainMs,
      adminToken: deps.adminToken,
    });
  }

  /**
   * Connects, joins (the first heartbeat) and starts beating. `url` is how the others reach this
   * instance (INSTANCE_URL, or the bound address). Resolves even when Redis does not answer yet:
   * the heartbeat joins once it does, and START answers 503 until then.
   */
  async start(registry: SessionRegistry, local: SessionDirectory, url: string): Promise<void> {
    const { config, logger } = this.#d;
    this.#registry = registry;
    this.#local = local;
    this.#lease = new Lease({
      client: this.#redis.commands,
      keys: this.#keys,
      logger,
      instanceId: this.id,
      instanceUrl: config.instanceUrl ?? url,
      leaseMs: config.leaseMs,
      retainCount: this.#d.retainCount,
      retainMs: this.#d.retainMs,
    });
    await this.#redis.open(config.leaseMs);
    await this.#remote.listen().catch((err: unknown) => logger.warn({ err: String(err) }, 'could not subscribe to this instance’s channel yet'));
    await this.#beatOnce();
    this.#schedule();
    logger.info({ instance: this.id, url: config.instanceUrl ?? url }, 'joined the cluster');
  }

  #schedule(): void {
    if (this.#state === 'CLOSED') return;
    this.#timer = setTimeout(() => {
      void this.#beatOnce().finally(() => this.#schedule());
    }, this.#d.config.heartbeatMs);
  }

  /** Runs one heartbeat, or joins the one in flight: beats never overlap. */
  #beatOnce(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => {
      this.#beating = null;
    });
    return this.#beating;
  }

  /** One heartbeat: renew (or fence, or rebuild), refresh this instance's records, reap the lost, sweep stop intents. */
  async #beat(): Promise<void> {
    const lease = this.#lease;
    if (!lease) return; // start() has not run: nothing to renew yet
    if (!this.#redis.ready) {
      this.#observer.redisUp(false);
      return;
    }
    try {
      const outcome = await lease.beat(this.#d.poolView());
      this.#observer.redisUp(true);
      if (outcome === 'fenced') return await this.#fence();
      if (this.#state === 'CONNECTING') this.#state = 'RUNNING';
      if (outcome === 'rebuild') this.#d.logger.warn('Redis had forgotten this instance (restarted?): writing its sessions again');
      await this.#refresh(outcome === 'rebuild');
      const [reaped, live] = await lease.reap();
      for (let i = 0; i < reaped; i++) this.#observer.instanceLost();
      this.#observer.instances(live);
      await this.#remote.listen();
      await this.#remote.sweep();
    } catch (err) {
      this.#observer.redisUp(false);
      this.#d.logger.debug({ err: String(err) }, 'heartbeat failed');
    }
  }

  /**
   * This instance was declared lost (a pause longer than the lease): the others have failed its
   * sessions, so it stops them rather than run on beside what the cluster believes, then joins again.
   */
  async #fence(): Promise<void> {
    const sessions = this.#registry!.list();
    this.#d.logger.error({ sessions: sessions.length }, 'this instance was declared lost by the cluster: stopping its sessions (instance_lost)');
    await Promise.all(sessions.map((s) => s.stop('instance_lost')));
    this.#pendingEnds.clear();
    this.#pendingReleases.clear();
    this.#lease!.rejoin();
  }

  /** Writes this instance's live sessions (their snapshots) and what failed to be written before. */
  async #refresh(restore: boolean): Promise<void> {
    for (const id of [...this.#pendingReleases]) {
      await this.#admission.release(id);
      this.#pendingReleases.delete(id);
    }
    for (const [id, s] of [...this.#pendingEnds]) {
      await this.#write(s);
      this.#pendingEnds.delete(id);
    }
    await Promise.all(
      this.#registry!.list().map(async (s) => {
        if (restore && (s.state === 'running' || s.state === 'starting')) await this.#admission.restore(s.id, s.clientAddress);
        await this.#write(s);
      }),
    );
  }

  async #write(s: Session): Promise<void> {
    await this.directory.write(await detail(s), s.createdAt, s.endedAt);
  }

  /**
   * Resume anywhere: how a connection finds the instance running a session it does not run, to
   * relay a RESUME there (src/ws/relay.ts); relay outcomes go to the cluster's call metrics.
   */
  relay(clientToken: string | undefined): RelayDeps {
    return {
      owners: this.directory,
      connectTimeoutMs: this.#d.config.callTimeoutMs,
      clientToken,
      connected: (outcome, seconds) => this.#observer.call('relay', seconds, outcome),
    };
  }

  /** Every live instance's pool as it last reported it. */
  async instances(): Promise<NonNullable<Schemas['Pool']['instances']>> {
    const client = this.#redis.commands;
    try {
      const ids = (await client.sendCommand(['ZRANGE', this.#keys.instances, '0', '-1'])) as string[];
      const rows = await Promise.all(ids.map((id) => client.sendCommand(['HMGET', this.#keys.instance(id), 'url', 'pool']) as Promise<(string | null)[]>));
      return ids.flatMap((id, i) => {
        const [url, pool] = rows[i]!;
        return url && pool ? [{ id, url, pool: JSON.parse(pool) as Schemas['PoolOfInstance'] }] : [];
      });
    } catch (err) {
      throw clusterUnavailable('the per-instance pool', err);
    }
  }

  // ---- SessionLedger ----

  /** Admits a START against the cluster's limits. */
  async admit(id: string, clientAddress: string | null): Promise<void> {
    let answer = await this.#admitOnce(id, clientAddress);
    // Without a live lease (Redis restarted and forgot this instance, or it was declared lost),
    // beat now rather than refuse until the next timer. At most three: the beat in flight (sent
    // before a pause, it may still say 'ok'), a fresh one (which may find the instance fenced and
    // stop its sessions) and one more, which joins.
    for (let beats = 0; answer === 'unjoined' && beats < 3 && this.#state !== 'CLOSED'; beats++) {
      await this.#beatOnce();
      answer = await this.#admitOnce(id, clientAddress);
    }
    if (answer === 'unjoined') throw notJoined();
  }

  /** One ADMIT round trip, counted as the cluster's 'admit' call (the beats between are not). */
  async #admitOnce(id: string, clientAddress: string | null): Promise<'admitted' | 'unjoined'> {
    const began = performance.now();
    let outcome: 'ok' | 'error' = 'error';
    try {
      const answer = await this.#admission.admit(id, clientAddress);
      outcome = 'ok';
      return answer;
    } catch (err) {
      // A refusal (full, per-client limit) is an answer: only an unreachable Redis is an error.
      if (!(err instanceof TandemError) || err.code !== 'CLUSTER_UNAVAILABLE') outcome = 'ok';
      throw err;
    } finally {
      this.#observer.call('admit', (performance.now() - began) / 1000, outcome);
    }
  }

  async started(session: Session): Promise<void> {
    // Failed (Redis away): the next heartbeat writes every live session again.
    await this.#write(session).catch(() => {});
  }

  released(id: string): void {
    this.#admission.release(id).catch(() => this.#pendingReleases.add(id));
  }

  ended(session: Session): void {
    this.#write(session).catch(() => this.#pendingEnds.set(session.id, session));
  }

  /**
   * Stops beating, leaves the cluster (its lease and keys removed: its sessions have ended and
   * their records say so) and closes the connections. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#state === 'CLOSED') return;
    this.#state = 'CLOSED';
    if (this.#timer) clearTimeout(this.#timer);
    await this.#beating?.catch(() => {});
    // A clean exit leaves the cluster at once: its sessions have ended (their records say so).
    if (this.#redis.ready) {
      await this.#redis.commands
        .sendCommand(['ZREM', this.#keys.instances, this.id])
        .then(() => this.#redis.commands.sendCommand(['DEL', this.#keys.instance(this.id), this.#keys.owned(this.id), this.#keys.stops(this.id)]))
        .catch(() => {});
    }
    this.#redis.close();
  }
}
