import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { Logger } from 'pino';
import { tandemError } from '../errors.js';
import type { ClusterConfig } from '../config.js';

export type RedisClient = ReturnType<typeof createClient>;

/** Longest wait between reconnection attempts, ms: Redis back means the cluster back soon after. */
const RECONNECT_MAX_MS = 500;

/**
 * The instance's two connections to Redis: one for commands and scripts, one for subscriptions
 * (a subscribed connection takes no other command).
 *
 * Deliberate node-redis settings: every command has a timeout (REDIS_COMMAND_TIMEOUT_MS); the
 * offline queue is off, so a command while disconnected fails at once (START answers 503 instead
 * of waiting for Redis to come back); a PING every heartbeat notices a dead peer that TCP does
 * not; reconnection never gives up. node-redis resubscribes after a reconnect, but messages sent
 * meanwhile are lost: stop intents are also kept as keys and swept (remote.ts).
 */
export class RedisConnections {
  readonly commands: RedisClient;
  readonly subscriber: RedisClient;
  readonly #logger: Logger;
  #closed = false;

  constructor(config: ClusterConfig, logger: Logger) {
    this.#logger = logger;
    this.commands = createClient({
      url: config.redisUrl,
      disableOfflineQueue: true,
      pingInterval: config.heartbeatMs,
      commandOptions: { timeout: config.commandTimeoutMs },
      socket: {
        connectTimeout: Math.max(config.commandTimeoutMs, 1000),
        reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), RECONNECT_MAX_MS),
      },
    });
    this.subscriber = this.commands.duplicate();
    for (const [name, client] of [['commands', this.commands], ['subscriber', this.subscriber]] as const) {
      // An unheard 'error' would crash the process; a lost connection is logged and retried.
      let last = '';
      client.on('error', (err: Error) => {
        const msg = err.message || err.name;
        if (msg !== last) logger.warn({ connection: name, err: msg }, 'redis connection error');
        last = msg;
      });
      client.on('ready', () => {
        if (last !== '') logger.info({ connection: name }, 'redis connection ready again');
        last = '';
      });
    }
  }

  /** True while commands can be sent. */
  get ready(): boolean {
    return this.commands.isReady;
  }

  /**
   * Opens both connections; resolves once they are ready or after `waitMs` (the instance starts
   * anyway: it registers itself when Redis answers).
   */
  async open(waitMs: number): Promise<void> {
    const both = Promise.all([this.commands.connect(), this.subscriber.connect()]);
    both.catch((err: unknown) => this.#logger.warn({ err: String(err) }, 'redis did not connect'));
    await Promise.race([both, new Promise((r) => setTimeout(r, waitMs).unref())]);
  }

  /** Closes both connections (pending commands fail). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [this.commands, this.subscriber]) {
      try {
        c.destroy();
      } catch {
        // never opened
      }
    }
  }
}

/** A Lua script run by its SHA (EVALSHA), loaded with EVAL the first time a server lacks it. */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await client.sendCommand(['EVALSHA', this.#sha, ...tail]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.sendCommand(['EVAL', this.#source, ...tail]);
    }
  }
}

/** The coded error for anything that failed because Redis did not answer. */
export function clusterUnavailable(what: string, cause?: unknown) {
  const why = cause instanceof Error ? `: ${cause.message || cause.name}` : '';
  return tandemError('CLUSTER_UNAVAILABLE', `${what} needs the cluster's Redis (REDIS_URL), which does not answer${why}; retry shortly`, cause);
}
