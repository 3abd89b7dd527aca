import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, type App, type AppDeps } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { LogCapture } from './logs.js';

/** Compiled fixture pipelines (test/fixtures/pipelines → dist/test/fixtures/pipelines). */
export const FIXTURE_PIPELINES = fileURLToPath(new URL('../fixtures/pipelines/', import.meta.url));
export const BROKEN_PIPELINES = fileURLToPath(new URL('../fixtures/broken-pipelines/', import.meta.url));

export interface TestServer {
  readonly app: App;
  readonly config: Config;
  readonly dataDir: string;
  readonly fileRoot: string;
  readonly port: number;
  httpUrl(p: string): string;
  wsUrl(p?: string): string;
  /** Spool folders currently on disk. */
  spools(): string[];
  close(): Promise<void>;
}

export interface StartOptions {
  /** Receives the server's log lines instead of stdout (set LOG_LEVEL in `env` to see any). */
  logs?: LogCapture;
  /** Where other instances' sessions run (AppDeps.relay). */
  relay?: AppDeps['relay'];
}

/** Starts a real tandem on 127.0.0.1 with a fresh DATA_DIR and FILE_ROOT; `env` overrides config. */
export async function startServer(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-test-'));
  const dataDir = path.join(base, 'data');
  const fileRoot = path.join(base, 'files');
  fs.mkdirSync(fileRoot, { recursive: true });
  const config = loadConfig({
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: dataDir,
    FILE_ROOT: fileRoot,
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const app = await createApp({ config, logger: createLogger(config.logLevel, options.logs), relay: options.relay });
  const { port } = await app.listen(0, '127.0.0.1');
  return {
    app,
    config,
    dataDir,
    fileRoot,
    port,
    httpUrl: (p) => `http://127.0.0.1:${port}${p}`,
    wsUrl: (p = '/ws') => `ws://127.0.0.1:${port}${p}`,
    spools() {
      const dir = path.join(dataDir, 'spool');
      return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    },
    async close() {
      await app.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Threads of this process right now (Linux). */
export function threadCount(pid: number | 'self' = 'self'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^Threads:\s+(\d+)/m.exec(status)![1]);
}

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Keeps this process's main thread (the in-process server's) busy for `ms`, as a long turn does:
 * the pool threads go on meanwhile, and what they post waits to be read.
 */
export function holdMainThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

/**
 * Holds the main thread `ms` twice: now, and again in the poll phase of the next turn, after that
 * phase read what the pool threads posted during the first hold. A watchdog timer that fell due
 * during the first hold runs between the two, so its check meets the second hold, the long turn a
 * client's frames can make, with the answers posted during it unread (pool/after-answers.ts).
 * The second hold runs in a loopback connection's data callback, written to at the end of the
 * first: the threads' answers were ready before it, so that phase reads them first.
 */
export async function holdTwoTurns(ms: number): Promise<void> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const writer = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  await once(writer, 'connect');
  const [reader] = await accepted;
  try {
    const second = new Promise<void>((resolve) => {
      reader.once('data', () => {
        holdMainThread(ms);
        resolve();
      });
    });
    holdMainThread(ms);
    writer.write('x');
    await second;
  } finally {
    writer.destroy();
    reader.destroy();
    listener.close();
  }
}
